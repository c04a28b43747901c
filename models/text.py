"""The one form in which keywords and messages are compared, shared by the content schema (which refuses
keywords that normalise to nothing) and the handlers (which match in it)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import opencc

_IGNORED = re.compile(r"[\s\W_]+", re.UNICODE)
_LATIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
# Followers in Hong Kong, Taiwan and abroad type traditional characters (幾點開始, 議程): keywords are
# written in simplified ones, so messages are converted with OpenCC's phrase-aware tables.
_TO_SIMPLIFIED = opencc.OpenCC("t2s")


@lru_cache(maxsize=4096)
def _simplified(text: str) -> str:
    # Cached: after a broadcast thousands of followers send the same few words.
    return _TO_SIMPLIFIED.convert(text)


def _gap(match: re.Match[str]) -> str:
    """A run of spaces and punctuation vanishes, except between two Latin words ("what time"), where one
    space stays so that Latin keywords can be matched on word boundaries."""
    text, start, end = match.string, match.start(), match.end()
    return " " if 0 < start and end < len(text) and text[start - 1] in _LATIN and text[end] in _LATIN else ""


def normalise(text: str) -> str:
    """Fold full-width forms, case and traditional characters; drop whitespace and punctuation (one space
    is kept between Latin words): the form keywords are matched in."""
    folded = unicodedata.normalize("NFKC", text).lower()
    if not folded.isascii():
        folded = _simplified(folded)
    return _IGNORED.sub(_gap, folded)


def compact(normalised: str) -> str:
    """The normalised text without the spaces kept between Latin words: how keywords are looked up."""
    return normalised.replace(" ", "")


def keyword_regex(word: str) -> str:
    """The pattern of one normalised keyword: a Latin word matches only as a whole word ("hi" is not in
    "nothing"), with or without spaces inside ("work shop" for "workshop"); Chinese anywhere."""
    word = compact(word)
    pattern = "".join(
        re.escape(character) + (" ?" if character in _LATIN and following in _LATIN else "")
        for character, following in zip(word, word[1:] + " ")
    )
    if word[:1] in _LATIN:
        pattern = r"(?<![a-z0-9])" + pattern
    if word[-1:] in _LATIN:
        pattern += r"(?![a-z0-9])"
    return pattern


def keywords_pattern(words: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern finding any of the normalised ``words`` (a match's ``compact`` form is the word), the
    longest first where several start at one place; None when there are none."""
    alternatives = sorted({compact(word) for word in words}, key=len, reverse=True)
    return re.compile("|".join(map(keyword_regex, alternatives))) if alternatives else None
