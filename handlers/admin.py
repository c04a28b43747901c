"""Organizers' commands in the chat: 管理 (the list), 统计, 查询, 签到, 广播 … 确认广播, 问题, 回答.

Only openids listed in ``EVENTBOT_ADMIN_OPENIDS`` reach these handlers; for anyone else the filters
decline and the words fall through to the ordinary topics (and in the end the help menu), so the
commands stay invisible. Everything they do goes through ``bot.organizer``, like the admin API and CLI.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from sqlalchemy.orm import Session

from handlers.dispatch import Context, FilterResult, Router
from handlers.replies import Text
from models import organizer, texts
from models.content import Content, Event
from models.redact import mask_phone_numbers

admin_router = Router("admin")

QUERY_LIMIT = 10


def from_admin(context: Context) -> bool:
    """The message comes from an organizer's openid."""
    return context.openid in context.admin_openids


class Command:
    """A filter for one command word at the start of the message; extracts the pattern's named groups."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(rf"\s*(?:{pattern})\s*", re.DOTALL)

    def __call__(self, context: Context) -> FilterResult:
        # Matched on a width-folded copy of the same length, so the command words match however they were
        # typed, while the values are cut from what the organizer wrote: a broadcast keeps its 「！，」.
        raw = context.raw_text
        match = self.pattern.fullmatch(_fold_width(raw))
        if match is None:
            return False
        return {
            name: raw[match.start(name):match.end(name)].strip() if match.start(name) >= 0 else ""
            for name in self.pattern.groupindex
        }


def _fold_width(text: str) -> str:
    """NFKC per character where it gives one character (full-width letters, digits, spaces → ASCII), so
    positions in the result are positions in ``text``."""
    return "".join(folded if len(folded := unicodedata.normalize("NFKC", char)) == 1 else char for char in text)


def registrants_named(content: str) -> Text:
    """A reply that shows followers' names, companies or words: WeChat's retry gets a stand-in instead."""
    return Text(content, texts.ADMIN_REPLY_STAND_IN)


def unsigned_sender(context: Context) -> bool:
    """The push came in plaintext although safe mode is configured (WECHAT_ACCEPT_PLAINTEXT): nothing
    signed its openid, so anyone holding a signed URL could have written it."""
    return not context.sender_verified


# Before the commands it guards: the first handler whose filters pass wins.
@admin_router.handler(
    from_admin, unsigned_sender, Command(r"(?:签到|广播|确认广播|回答).*"), topic="admin_refused_unsigned"
)
def handle_unsigned_change() -> Text:
    return Text(texts.ADMIN_NEEDS_SAFE_MODE)


@admin_router.handler(from_admin, Command(r"管理|管理命令"), topic="admin_help")
def handle_admin_help() -> Text:
    return Text(texts.ADMIN_HELP)


@admin_router.handler(from_admin, Command(r"统计"), topic="admin_stats")
def handle_stats(session: Session, content: Content, event: Event, now: datetime) -> Text:
    return Text(texts.admin_stats(organizer.event_stats(session, content, event, now)))


@admin_router.handler(from_admin, Command(r"查询\s*(?P<query>.*)"), topic="admin_query")
def handle_query(session: Session, event: Event, query: str) -> Text:
    if not query:
        return Text(texts.ADMIN_QUERY_HINT)
    matches, total = organizer.search_registrations(session, event.id, q=query, limit=QUERY_LIMIT)
    if not matches:
        return Text(f"{texts.ADMIN_NO_MATCH}\n{texts.ADMIN_QUERY_HINT}")
    lines = [
        texts.admin_match_line(index, registration, mask_phone_numbers(registration.phone or ""))
        for index, (registration, _channel) in enumerate(matches, start=1)
    ]
    return registrants_named(texts.admin_matches(lines, total))


@admin_router.handler(from_admin, Command(r"签到\s*(?P<code>[A-Za-z0-9]+)"), topic="admin_checkin")
def handle_checkin(session: Session, event: Event, now: datetime, code: str) -> Text:
    try:
        done = organizer.check_in_by_code(session, event.id, code, now)
    except organizer.NotFound:
        return Text(texts.admin_checkin_unknown(code.upper()))
    except organizer.NotConfirmed as refused:
        return registrants_named(texts.admin_checkin_refused(refused.registration))
    reply = texts.admin_checked_in(done.registration, done.already)
    return registrants_named(f"{reply}\n{done.warning}" if done.warning else reply)


_SEGMENTS = "|".join(word for word in texts.ADMIN_AUDIENCE_WORDS if word)


@admin_router.handler(
    from_admin, Command(rf"广播(?:\s*(?P<segment>{_SEGMENTS})(?=\s))?\s*(?P<message>.*)"), topic="admin_broadcast"
)
def handle_broadcast(session: Session, openid: str, event: Event, now: datetime, segment: str, message: str) -> Text:
    if not message:
        return Text(texts.ADMIN_HELP)
    audience = texts.ADMIN_AUDIENCE_WORDS[segment]
    recipients = organizer.save_draft(
        session, openid=openid, event_id=event.id, audience=audience, text=message, now=now
    )
    return Text(texts.admin_broadcast_preview(audience, recipients, message))


@admin_router.handler(from_admin, Command(r"确认广播"), topic="admin_broadcast_confirm")
def handle_broadcast_confirm(session: Session, openid: str, now: datetime) -> Text:
    campaign = organizer.confirm_draft(session, openid, now)
    if campaign is None:
        return Text(texts.ADMIN_NO_DRAFT)
    return Text(texts.admin_broadcast_started(campaign.id, campaign.recipients))


@admin_router.handler(from_admin, Command(r"取消广播"), topic="admin_broadcast_discard")
def handle_broadcast_discard(session: Session, openid: str, now: datetime) -> Text:
    draft = organizer.take_draft(session, openid, now)
    return Text(texts.ADMIN_DRAFT_DISCARDED if draft is not None else texts.ADMIN_NO_DRAFT)


@admin_router.handler(from_admin, Command(r"问题|待回答"), topic="admin_inbox")
def handle_inbox(session: Session, event: Event) -> Text:
    groups = organizer.open_groups(session, event.id)
    return registrants_named(texts.admin_inbox(groups)) if groups else Text(texts.ADMIN_INBOX_EMPTY)


@admin_router.handler(from_admin, Command(r"回答\s*#?(?P<question_id>\d+)\s+(?P<answer>.+)"), topic="admin_answer")
def handle_answer(session: Session, now: datetime, question_id: str, answer: str) -> Text:
    try:
        group = organizer.answer_group(session, int(question_id), answer, now)
    except organizer.UnknownQuestion:
        return Text(texts.admin_no_question(int(question_id)))
    return Text(texts.admin_answered(len(group)))
