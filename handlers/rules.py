"""The organisers' own keyword rules from ``config.toml``, checked before the built-in topics.

``RuleMatcher`` compiles every rule once, when the responder is built: the ``exact`` keywords into one
dictionary, the ``contains`` keywords into one pattern (after the same normalisation as the built-in
keywords), the ``regex`` keywords each on its own and together into one screening pattern. Matching a
message is then one dictionary lookup, one scan of the text and one screening search; only when the
screen finds something are the rules' own regular expressions searched, in file order.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from handlers.dispatch import Context, FilterResult, Router
from handlers.matching import normalise
from handlers.replies import Article, Image, News, Reply, Text
from models.content import ConfiguredReply, Keyword, Rule, compile_rule_regex
from models.text import compact, keywords_pattern

rules_router = Router("rule")


@dataclass(frozen=True)
class RuleMatch:
    """Which rule answers, where it is in ``config.toml`` (``rules[3]``), and the keyword that matched."""

    index: int
    rule: Rule
    keyword: Keyword | None

    @property
    def position(self) -> str:
        return f"rules[{self.index}]"


def configured_reply(reply: ConfiguredReply) -> Reply | None:
    """The reply to send for a reply written in the config; None when it is empty."""
    if reply.image is not None and reply.image.media_id:
        return Image(reply.image.media_id)
    if reply.news is not None:
        article = reply.news
        return News((Article(article.title, article.description, article.picture_url, article.url),))
    return Text(reply.text) if reply.text.strip() else None


def _regex_screen(regexes: dict[int, list[tuple[re.Pattern[str], Keyword]]]) -> tuple[re.Pattern[str] | None, set[int]]:
    """One pattern that matches when any regex keyword may, and the rules it cannot vouch for.

    Most messages match no regex keyword; one search of the combined pattern says so, instead of one
    search per rule. A pattern with groups (whose numbers would shift) or global flags cannot be combined:
    its rule is always searched on its own.
    """
    combined: list[str] = []
    unscreened: set[int] = set()
    for index, entries in regexes.items():
        for pattern, _keyword in entries:
            try:
                compile_rule_regex(f"(?:{pattern.pattern})")
            except re.error:
                unscreened.add(index)
                continue
            if pattern.groups:
                unscreened.add(index)
            else:
                combined.append(f"(?:{pattern.pattern})")
    return (compile_rule_regex("|".join(combined)) if combined else None), unscreened


def _ends_a_word(word: str, length: int) -> bool:
    """Whether ``word[:length]`` may be a keyword found where ``word`` was: not a Latin word cut in two."""
    return length == len(word) or not (word[length - 1].isascii() and word[length].isascii() and
                                       word[length - 1].isalnum() and word[length].isalnum())


class RuleMatcher:
    """Every enabled rule compiled once; finds the first rule, in file order, that answers a message."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._rules = list(rules)
        self._by_name = {rule.name: index for index, rule in enumerate(self._rules) if rule.name}
        # normalised word -> (rule index, keyword), in file order; a word may belong to several rules.
        self._exact: dict[str, list[tuple[int, Keyword]]] = {}
        contains: dict[str, list[tuple[int, Keyword]]] = {}
        self._regexes: dict[int, list[tuple[re.Pattern[str], Keyword]]] = {}
        for index, rule in enumerate(self._rules):
            if not rule.enabled:
                continue
            for keyword in rule.keywords:
                if keyword.mode == "regex":
                    self._regexes.setdefault(index, []).append((compile_rule_regex(keyword.word), keyword))
                    continue
                # Never empty: the content schema refuses keywords that normalise to nothing (``Keyword``).
                table = self._exact if keyword.mode == "exact" else contains
                table.setdefault(compact(normalise(keyword.word)), []).append((index, keyword))
        # At one position the pattern finds only the longest word, so each word also carries the rules of
        # the shorter words it starts with ("电脑包" found means "电脑" was there too).
        self._contains = {
            word: sorted(
                entry
                for length in range(1, len(word) + 1)
                if _ends_a_word(word, length)
                for entry in contains.get(word[:length], [])
            )
            for word in contains
        }
        self._pattern = keywords_pattern(contains)
        self._screen, self._unscreened = _regex_screen(self._regexes)

    def match(self, raw_text: str, now: datetime, event_id: str) -> RuleMatch | None:
        """The first active rule whose keyword matches ``raw_text``, in the order of the config file."""
        typed = unicodedata.normalize("NFKC", raw_text).strip()
        if not typed:
            return None
        # Only regex keywords can match text of nothing but punctuation ("？？？" normalises to "").
        text = normalise(raw_text)
        found: dict[int, Keyword] = {}
        for index, keyword in self._exact.get(compact(text), []):
            found.setdefault(index, keyword)
        if self._pattern is not None and text:
            position = 0
            while (hit := self._pattern.search(text, position)) is not None:
                for index, keyword in self._contains[compact(hit.group(0))]:
                    found.setdefault(index, keyword)
                position = hit.start() + 1
        screened_out = self._screen is not None and self._screen.search(typed) is None
        for index in sorted(found.keys() | (self._unscreened if screened_out else self._regexes.keys())):
            rule = self._rules[index]
            if not rule.active(now, event_id):
                continue
            keyword = found.get(index) or next(
                (keyword for pattern, keyword in self._regexes.get(index, []) if pattern.search(typed)), None
            )
            if keyword is not None:
                return RuleMatch(index, rule, keyword)
        return None

    def named(self, name: str, now: datetime, event_id: str) -> RuleMatch | None:
        """The rule called ``name`` (a menu click mapped to it), when it is active."""
        index = self._by_name.get(name)
        if index is None or not self._rules[index].active(now, event_id):
            return None
        return RuleMatch(index, self._rules[index], None)


def matches_rule(context: Context) -> FilterResult:
    """Extracts ``rule_match``: the rule a text (or a menu click mapped in ``[menu.click_rules]``) asks for."""
    message = context.get("message")
    rules: RuleMatcher = context.get("rules")
    now, event_id = context.get("now"), context.get("event").id
    if message.type == "event":
        if message.event != "click":
            return False
        name = context.get("content").menu.click_rules.get(message.key)
        found = rules.named(name, now, event_id) if name else None
    else:
        found = rules.match(context.get("raw_text"), now, event_id)
    return {"rule_match": found} if found else False


@rules_router.handler(matches_rule)
def handle_rule(rule_match: RuleMatch) -> Reply | None:
    return configured_reply(rule_match.rule.reply)
