"""Turning what followers type into topics: normalisation, keyword index and the filters built on them.

Followers type with full-width characters, spaces, punctuation and extra words ("请问活动几点开始？").
Text is normalised once per message (NFKC folds full-width forms, then case, spaces and punctuation go),
and the keyword index, compiled once per configuration, finds every topic whose word appears anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from handlers.dispatch import Context, FilterResult
from models.text import normalise  # defined in models (the content schema needs it too)

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


class KeywordIndex:
    """Every topic's keywords, compiled once into one pattern; finds the topics a text mentions."""

    def __init__(self, keywords: Mapping[str, Iterable[str]]) -> None:
        self._topic_of: dict[str, str] = {}
        for topic, words in keywords.items():
            for word in words:
                key = normalise(word)
                if key:
                    self._topic_of.setdefault(key, topic)
        # Longest first, so a long keyword is preferred over a shorter one inside it.
        alternatives = sorted(self._topic_of, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, alternatives))) if alternatives else None

    def topics_in(self, normalised: str) -> frozenset[str]:
        """Topics whose keywords appear anywhere in the normalised text."""
        if self._pattern is None or not normalised:
            return frozenset()
        found = set()
        position = 0
        # finditer skips overlapping words; scanning from each start keeps "课件回放" finding both.
        while (match := self._pattern.search(normalised, position)) is not None:
            found.add(self._topic_of[match.group(0)])
            position = match.start() + 1
        return frozenset(found)

    def topic_of(self, normalised: str) -> str | None:
        """The topic when the whole text is one of its keywords ("地点"), else None."""
        return self._topic_of.get(normalised)


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
    """The topics this message asks about: a mapped menu click, a help-menu number, or keywords."""
    message = context.get("message")
    content = context.get("content")
    if message.type == "event":
        if message.event == "click":
            topic = content.menu.click_topics.get(message.key)
            return frozenset({topic}) if topic else frozenset()
        return frozenset()
    text = context.get("text")
    number = bare_number(text)
    if number is not None:
        topics = content.help.topics
        return frozenset({topics[number - 1]}) if 1 <= number <= len(topics) else frozenset({"help"})
    return context.get("keywords").topics_in(text)
