"""Turning what followers type into topics: normalisation, keyword index and the filters built on them.

Followers type with full-width characters, spaces, punctuation and extra words ("请问活动几点开始？").
Text is normalised once per message (NFKC folds full-width forms, then case, spaces and punctuation go),
and the keyword index, compiled once per configuration, finds every topic whose word appears anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

from handlers.dispatch import Context, FilterResult

# Defined in models (the content schema needs them too).
from models.text import compact, keywords_pattern, normalise

_CHINESE_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_TALK_ORDINAL = re.compile(r"第([0-9]+|[一二三四五六七八九十])(?:场|个|位|讲|节|个分享|场分享)")
_BARE_NUMBER = re.compile(r"^[0-9]{1,2}$")


def bare_number(normalised: str) -> int | None:
    """The number when the whole message is one (``"2"``, ``"２"``), else None."""
    return int(normalised) if _BARE_NUMBER.match(normalised) else None


def talk_ordinal(normalised: str) -> int | None:
    """The talk number in ``第二场`` / ``第2场``, else None."""
    match = _TALK_ORDINAL.search(normalised)
    if not match:
        return None
    value = match.group(1)
    return int(value) if value.isdigit() else _CHINESE_DIGITS[value]


# Topics that act rather than inform: inside a question that also names an informing topic they give
# way ("可以线上参加吗" asks about the livestream, it does not open the form that 参加 opens).
ACTION_TOPICS = frozenset({"register"})
# Topics whose near misses count (议陈 for 议程): the event's facts, where a wrong guess costs little; a
# slip towards a command or a person (签到a, 没人懂) would act on words nobody meant.
NEAR_MISS_TOPICS = frozenset({"agenda", "time", "venue", "livestream", "materials"})
# What makes a message a question besides a question mark: question words, Chinese and a little English.
_QUESTION = re.compile(
    r"[?？]|吗|怎么|怎样|如何|哪|几|多少|多久|是否|能不能|可不可以|可否|有没有|是不是|是什么|为什么|有什么|是啥|有啥"
    r"|(?<![a-z])(?:what|when|where|how|which|is there|are there|can i|do i|any)(?![a-z])"
)
_LATIN_RUN = re.compile(r"[a-z0-9]+")
_PARTICLES = re.compile(r"(?:是什么|是啥|吗|呢|啊|呀|嘞)+$")

# Topics a numbered choice may offer: those that inform (nothing is done on a guess), each labelled in
# ``texts.TOPIC_LABELS``. A choice is stored by their positions here: append, never reorder.
CHOICE_TOPICS = ("agenda", "time", "venue", "livestream", "materials", "now_next")
_CHOOSABLE = frozenset(CHOICE_TOPICS)
# Scores this close are a choice: one character more says nothing of the topic meant (时间 or 报告厅);
# two or more do (现在在讲 over 讲什么).
CHOICE_MARGIN = 1
# What a message offered a choice may hold besides the topics' names: connectors and particles.
_BETWEEN_NAMES = re.compile(r"(?:和|跟|与|以及|及|还是|或者|或|and|or|请问|活动的|活动|是什么|是啥|吗|呢|啊|呀|吧| )*")
_CHOICE_LIST = "choice:"


def is_question(raw_text: str, normalised: str) -> bool:
    """Whether the follower asks something: a question mark, or a question word in the message."""
    return "?" in raw_text or "？" in raw_text or _QUESTION.search(normalised) is not None


def _weight(word: str) -> int:
    """How much a keyword says: one per Chinese character, two per Latin word ("k8s", "what time": 2, 4)."""
    return len(_LATIN_RUN.sub("xx", word).replace(" ", ""))


def _asks(word: str) -> bool:
    """Whether a keyword is a question phrase (在哪, 几点, 讲什么, where): it asks about whatever else the
    message names rather than naming a topic itself."""
    return _QUESTION.search(word) is not None or "什么" in word or "啥" in word


def choice_list(topics: Iterable[str]) -> str:
    """How ``Follower.last_list`` (16 characters) records a choice offered: ``choice:12`` for time, venue."""
    return _CHOICE_LIST + "".join(str(CHOICE_TOPICS.index(topic)) for topic in topics)


def offered_choice(last_list: str | None) -> tuple[str, ...]:
    """The topics of the choice ``last_list`` records, in their numbered order; () for any other list."""
    if not last_list or not last_list.startswith(_CHOICE_LIST):
        return ()
    return tuple(CHOICE_TOPICS[int(position)] for position in last_list.removeprefix(_CHOICE_LIST))


@dataclass(frozen=True)
class Mentions:
    """The topics a message mentions: each one's score, and those it names (not only asks about)."""

    scores: Mapping[str, int]
    named: frozenset[str]

    @property
    def best(self) -> frozenset[str]:
        """The highest-scoring topics; of equals, those named beat those only asked about ("课件在哪" is
        about 课件), and the routers' order decides between the rest."""
        tied = self._within(0)
        return (tied & self.named) or tied

    @property
    def close(self) -> frozenset[str]:
        """The topics within ``CHOICE_MARGIN`` of the best score: a choice, when the text allows one."""
        return self._within(CHOICE_MARGIN)

    def _within(self, margin: int) -> frozenset[str]:
        if not self.scores:
            return frozenset()
        top = max(self.scores.values())
        return frozenset(topic for topic, score in self.scores.items() if score >= top - margin)


class KeywordIndex:
    """Every topic's keywords, compiled once into one pattern; scores the topics a text mentions.

    A topic's score is the weight of its distinct keywords found in the text, so the more specific
    wording wins ("现在在讲什么" is now_next's 现在在讲 rather than agenda's 讲什么). Text with no keyword at
    all is tried for near misses (议陈 for 议程): a keyword with one character wrong after the first.
    """

    def __init__(self, keywords: Mapping[str, Iterable[str]]) -> None:
        self._topic_of: dict[str, str] = {}
        for topic, words in keywords.items():
            for word in words:
                key = compact(normalise(word))
                if key:
                    self._topic_of.setdefault(key, topic)
        self._pattern = keywords_pattern(self._topic_of)
        self._names = frozenset(word for word in self._topic_of if not _asks(word))
        # Near misses are looked for among Chinese keywords of two or more characters, by first character.
        self._near: dict[str, list[str]] = {}
        for word, topic in self._topic_of.items():
            if len(word) >= 2 and not word.isascii() and topic in NEAR_MISS_TOPICS:
                self._near.setdefault(word[0], []).append(word)

    def _matches(self, normalised: str) -> Iterator[re.Match[str]]:
        # finditer skips overlapping words; scanning from each start keeps "课件回放" finding both.
        position = 0
        while (match := self._pattern.search(normalised, position)) is not None:
            yield match
            position = match.start() + 1

    def topics_in(self, normalised: str) -> frozenset[str]:
        """Topics whose keywords appear anywhere in the normalised text."""
        if self._pattern is None or not normalised:
            return frozenset()
        return frozenset(self._topic_of[compact(match.group(0))] for match in self._matches(normalised))

    def mentions(self, normalised: str, question: bool) -> Mentions:
        """Each mentioned topic's score (near misses score when nothing matched exactly). In a question, an
        informing topic beats the action topics."""
        if self._pattern is None or not normalised:
            return Mentions({}, frozenset())
        words = {compact(match.group(0)) for match in self._matches(normalised)} or self._near_misses(normalised)
        scores: dict[str, int] = {}
        for word in words:
            topic = self._topic_of[word]
            scores[topic] = scores.get(topic, 0) + _weight(word)
        if question and scores.keys() - ACTION_TOPICS:
            scores = {topic: score for topic, score in scores.items() if topic not in ACTION_TOPICS}
        return Mentions(scores, frozenset(self._topic_of[word] for word in words & self._names))

    def choice(self, normalised: str, mentions: Mentions) -> tuple[str, ...]:
        """The topics to offer as a numbered choice, in the order the text names them: two or more close
        topics, each named, in a text of nothing but their names, connectors and particles ("时间和地点").
        () when the text says which it means ("课件在哪下载", "ppt能分享吗")."""
        close = mentions.close
        if len(close) < 2 or not close <= mentions.named or not close <= _CHOOSABLE:
            return ()
        first_named: dict[str, int] = {}
        spans = []
        for match in self._matches(normalised):
            word = compact(match.group(0))
            if word in self._names and self._topic_of[word] in close:
                first_named.setdefault(self._topic_of[word], match.start())
                spans.append(match.span())
        gaps, position = [], 0
        for start, end in spans:
            gaps.append(normalised[position:start])
            position = max(position, end)
        gaps.append(normalised[position:])
        if not all(_BETWEEN_NAMES.fullmatch(gap) for gap in gaps):
            return ()
        return tuple(sorted(close, key=first_named.__getitem__))

    def _near_misses(self, normalised: str) -> set[str]:
        # Only a message that is one keyword with one character wrong, maybe with a question particle
        # ("议陈", "议呈呢"): inside a longer message a slip is as likely another word (能开发票: 开始?).
        core = _PARTICLES.sub("", normalised)
        return {
            word
            for word in self._near.get(core[:1], ())
            if len(word) == len(core) and Levenshtein.distance(core, word, score_cutoff=1) <= 1
        }

    def topic_of(self, normalised: str) -> str | None:
        """The topic when the whole text is one of its keywords ("地点"), else None."""
        return self._topic_of.get(compact(normalised))


@dataclass(frozen=True)
class AsksAbout:
    """Passes when the follower asked about ``topic``: by keyword, menu click or help-menu number."""

    topic: str

    def __call__(self, context: Context) -> FilterResult:
        return self.topic in context.get("requested_topics")


@dataclass(frozen=True)
class MessageType:
    """Passes for messages of the given WeChat ``MsgType`` values."""

    types: frozenset[str]

    def __init__(self, *types: str) -> None:
        object.__setattr__(self, "types", frozenset(types))

    def __call__(self, context: Context) -> FilterResult:
        return context.get("message").type in self.types


@dataclass(frozen=True)
class EventType:
    """Passes for event pushes of the given event types (wechatpy's lower-case names)."""

    events: frozenset[str]

    def __init__(self, *events: str) -> None:
        object.__setattr__(self, "events", frozenset(events))

    def __call__(self, context: Context) -> FilterResult:
        message = context.get("message")
        return message.type == "event" and message.event in self.events


QR_SCENE_PREFIX = "qrscene_"
CHECKIN_SCENE_PREFIX = "checkin:"


def qr_scene(message) -> str:
    """The scene of the parametric QR code behind a scan or follow event ("" when none).

    wechatpy strips "qrscene_" and calls the event subscribe_scan; a plain subscribe may still carry it.
    """
    if message.event in ("subscribe_scan", "scan"):
        return message.scene_id or ""
    if message.event == "subscribe_scan_product":  # a product's barcode or image, not our QR code
        return ""
    return (message._data.get("EventKey") or "").removeprefix(QR_SCENE_PREFIX)


def checkin_scene(context: Context) -> FilterResult:
    """Passes for a scan, or scan-to-follow, of an event's check-in code; extracts ``checkin_event_id``."""
    message = context.get("message")
    if message.type != "event" or message.event not in ("scan", "subscribe", "subscribe_scan"):
        return False
    scene = qr_scene(message)
    if not scene.startswith(CHECKIN_SCENE_PREFIX):
        return False
    return {"checkin_event_id": scene.removeprefix(CHECKIN_SCENE_PREFIX)}


def has_text(context: Context) -> FilterResult:
    """Passes when the message carries words: a text message, or a voice message WeChat recognised."""
    # The raw words, not the normalised text: "？？？" normalises to nothing but still deserves an answer.
    return bool(context.get("raw_text").strip())


def requested_topics(context: Context) -> frozenset[str]:
    """The topics this message asks about: a mapped menu click, a number from a list, or keywords."""
    message = context.get("message")
    content = context.get("content")
    if message.type == "event":
        if message.event == "click":
            topic = content.menu.click_topics.get(message.key)
            return frozenset({topic}) if topic else frozenset()
        return frozenset()
    number = bare_number(context.get("text"))
    if number is not None:
        return _numbered_topic(context, number)
    return context.get("mentions").best


def _numbered_topic(context: Context, number: int) -> frozenset[str]:
    """The topic a bare number picks in the numbered list the follower saw last: a choice offered, else the
    help menu. Only their row says which: without the database, none yet (the database path answers)."""
    if not context.has_database:
        return frozenset()
    topics = offered_choice(context.get("follower").last_list) or context.get("content").help.topics
    return frozenset({topics[number - 1]}) if 1 <= number <= len(topics) else frozenset({"help"})


def keyword_mentions(context: Context) -> Mentions:
    """The topics the message's keywords mention, worked out once per message."""
    return context.get("keywords").mentions(context.get("text"), context.get("question"))


def asks_question(context: Context) -> bool:
    """Whether the message is a question (a question mark or a question word)."""
    return is_question(context.get("raw_text"), context.get("text"))
