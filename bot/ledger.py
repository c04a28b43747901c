"""The reply ledger: de-duplication of WeChat's retries, shared by every process.

WeChat re-sends a message (same FromUserName and MsgId) up to three times when a reply is slow. The
first delivery claims the message; a retry of one already answered gets the stored reply, and a retry
of one still being handled gets ``success``. A claim whose process died is taken over after
``STALE_CLAIM`` so the message is not lost. The database ledger records the reply in the handler's own
transaction, so a reply is stored exactly when the handler's effects are.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

import redis
from sqlalchemy import delete, event, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from models import InboundMessage

STALE_CLAIM = timedelta(seconds=60)
ANSWER_KEPT = timedelta(days=1)


class ClaimState(enum.Enum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"


@dataclass(frozen=True)
class Claim:
    state: ClaimState
    reply_xml: str = ""


def dedup_key(message) -> str:
    """(FromUserName, MsgId) for messages; (FromUserName, CreateTime, Event, EventKey) for events."""
    # The raw MsgType, not message.type: events wechatpy does not know (subscribe_msg_popup_event) parse
    # as "unknown" messages with no MsgId, and would all share one key.
    if str(message._data.get("MsgType", "")).lower() == "event":
        event_key = message._data.get("EventKey") or ""
        return f"{message.source}|e|{message.time}|{message._data.get('Event', '')}|{event_key}"[:255]
    return f"{message.source}|m|{message.id}"[:255]


def _utcnow() -> datetime:
    # Retries follow real time, whatever the event clock says.
    return datetime.now(timezone.utc)


class ReplyLedger(Protocol):
    def claim(self, key: str) -> Claim: ...

    def record(self, session: Session, key: str, reply_xml: str) -> None:
        """Store the reply so that it becomes visible when ``session`` commits."""

    def release(self, key: str) -> None:
        """Forget an unanswered claim (the handler failed) so that a retry is handled afresh."""


# Core statements on the table, not ORM objects: the ledger runs twice per message, and the ORM's unit of
# work cost more CPU than the statements themselves (0.30 -> 0.16 ms per claim on SQLite).
_LEDGER = InboundMessage.__table__


class DatabaseLedger:
    """Ledger rows in ``inbound_messages``; works on every backend, no extra service."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def claim(self, key: str) -> Claim:
        now = _utcnow()
        try:
            with self._sessions.begin() as session:
                session.connection().execute(insert(_LEDGER).values(dedup_key=key, claimed_at=now))
            return Claim(ClaimState.NEW)
        except IntegrityError:
            pass
        with self._sessions.begin() as session:
            row = session.scalar(select(InboundMessage).where(InboundMessage.dedup_key == key))
            if row is None:  # released in between: ask again
                return self.claim(key)
            if row.reply_xml is not None:
                return Claim(ClaimState.ANSWERED, row.reply_xml)
            if now - row.claimed_at < STALE_CLAIM:
                return Claim(ClaimState.IN_PROGRESS)
            # The claimant died. Take over only if nobody else did first (compare-and-set on claimed_at).
            taken = session.execute(
                update(InboundMessage)
                .where(InboundMessage.dedup_key == key, InboundMessage.claimed_at == row.claimed_at)
                .values(claimed_at=now)
            )
            return Claim(ClaimState.NEW if taken.rowcount == 1 else ClaimState.IN_PROGRESS)

    def record(self, session: Session, key: str, reply_xml: str) -> None:
        session.connection().execute(update(_LEDGER).where(_LEDGER.c.dedup_key == key).values(reply_xml=reply_xml))

    def release(self, key: str) -> None:
        with self._sessions.begin() as session:
            session.execute(
                delete(InboundMessage).where(InboundMessage.dedup_key == key, InboundMessage.reply_xml.is_(None))
            )


class RedisLedger:
    """Ledger entries in Redis (``SET NX EX``): shared by every process, expiring by themselves."""

    _PENDING = "pending"
    _ANSWER_PREFIX = "reply:"

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self._redis = client
        self._prefix = f"{namespace}:inbound:"

    def claim(self, key: str) -> Claim:
        name = self._prefix + key
        # The pending marker expires by itself, so a claim whose process died is taken over.
        if self._redis.set(name, self._PENDING, nx=True, ex=int(STALE_CLAIM.total_seconds())):
            return Claim(ClaimState.NEW)
        value = self._redis.get(name)
        if value is None:
            return self.claim(key)
        text = value.decode()
        if text.startswith(self._ANSWER_PREFIX):
            return Claim(ClaimState.ANSWERED, text.removeprefix(self._ANSWER_PREFIX))
        return Claim(ClaimState.IN_PROGRESS)

    def record(self, session: Session, key: str, reply_xml: str) -> None:
        def store(_session: Session) -> None:
            self._redis.set(self._prefix + key, self._ANSWER_PREFIX + reply_xml, ex=int(ANSWER_KEPT.total_seconds()))

        event.listen(session, "after_commit", store, once=True)

    def release(self, key: str) -> None:
        name = self._prefix + key
        if self._redis.get(name) == self._PENDING.encode():
            self._redis.delete(name)
