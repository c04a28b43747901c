"""The reply ledger: de-duplication of WeChat's retries, shared by every process.

WeChat re-sends a message (same FromUserName and MsgId) up to three times when a reply is slow. The
first delivery claims the message; a retry of one already answered gets the stored reply, and a retry
of one still being handled gets ``success`` (it waits, and the webhook's reply budget answers
``success`` for it). Claims are made inside the message's own transaction, so a reply is stored exactly
when the handler's effects are, and a claim whose process died disappears with its transaction.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

import redis
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models import InboundMessage
from models.commit_writes import CommitWrites
from models.redis_guard import RedisGuard
from models.retention import LEDGER_KEPT

STALE_CLAIM = timedelta(seconds=60)
# Kept for WeChat's retries only, as long as the database ledger keeps its rows. A reply that holds
# personal fields (the form's summary, 我的信息) is stored as its stand-in (``Text.stand_in``).
ANSWER_KEPT = LEDGER_KEPT


class ClaimState(enum.Enum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"


@dataclass(frozen=True)
class Claim:
    state: ClaimState
    reply_xml: str = ""


# What a message says, for the key of one without MsgId (named fields only: wechatpy adds defaults to
# ``_data`` as handlers read them, so hashing all of it would change the key mid-message).
_CONTENT_FIELDS = ("MsgType", "Content", "Recognition", "MediaId", "PicUrl", "Url", "Location_X", "Location_Y", "Label")


def dedup_key(message) -> str:
    """(FromUserName, MsgId) for messages; (FromUserName, CreateTime, Event, EventKey) for events; a message
    without MsgId: (FromUserName, CreateTime, a hash of its whole content), never one key for them all."""
    # The raw MsgType, not message.type: events wechatpy does not know (subscribe_msg_popup_event) parse
    # as "unknown" messages with no MsgId, and would all share one key.
    if str(message._data.get("MsgType", "")).lower() == "event":
        event_key = message._data.get("EventKey") or ""
        return f"{message.source}|e|{message.time}|{message._data.get('Event', '')}|{event_key}"[:255]
    if message._data.get("MsgId") is None:
        content = "\x1f".join(str(message._data.get(name) or "") for name in _CONTENT_FIELDS)
        return f"{message.source}|t|{message.time}|{hashlib.sha256(content.encode()).hexdigest()}"[:255]
    return f"{message.source}|m|{message.id}"[:255]


def _utcnow() -> datetime:
    # Retries follow real time, whatever the event clock says.
    return datetime.now(timezone.utc)


class ReplyLedger(Protocol):
    def claim(self, session: Session, key: str, openid: str) -> Claim:
        """Claim ``key`` (a message of ``openid``) as part of ``session``'s transaction, or say who answered it."""

    def record(self, session: Session, key: str, reply_xml: str) -> None:
        """Store the reply so that it becomes visible when ``session`` commits."""

    def release(self, key: str) -> None:
        """Forget an unanswered claim (the handler failed) so that a retry is handled afresh."""

    def forget_follower(self, session: Session, openid: str, keep_key: str) -> None:
        """Forget the replies stored for ``openid``'s messages (it asked for its data to be erased), all
        but the one to ``keep_key`` (the message being answered)."""


# Core statements on the table, not ORM objects: the ledger runs on every message, and the ORM's unit of
# work cost more CPU than the statements themselves.
_LEDGER = InboundMessage.__table__
_INSERT_IGNORING_CONFLICT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class DatabaseLedger:
    """Ledger rows in ``inbound_messages``, written in the message's own transaction; no extra service.

    The claim is an insert that ignores a conflict. A concurrent delivery of the same message waits on
    that row (PostgreSQL's unique index, SQLite's single writer) until the first transaction ends: then
    it finds the stored reply, or, if the first one died or failed, claims the message itself. Only
    answered rows are ever visible to other transactions, so no claim can be left stale.
    """

    def claim(self, session: Session, key: str, openid: str) -> Claim:
        connection = session.connection()
        statement = _INSERT_IGNORING_CONFLICT[connection.dialect.name](_LEDGER)
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT through SQLAlchemy.
        inserted = connection.execute(
            statement.values(dedup_key=key, claimed_at=_utcnow())
            .on_conflict_do_nothing(index_elements=["dedup_key"])
            .returning(_LEDGER.c.dedup_key)
        ).first()
        if inserted is not None:
            return Claim(ClaimState.NEW)
        reply = connection.execute(select(_LEDGER.c.reply_xml).where(_LEDGER.c.dedup_key == key)).scalar()
        return Claim(ClaimState.IN_PROGRESS) if reply is None else Claim(ClaimState.ANSWERED, reply)

    def record(self, session: Session, key: str, reply_xml: str) -> None:
        session.connection().execute(update(_LEDGER).where(_LEDGER.c.dedup_key == key).values(reply_xml=reply_xml))

    def release(self, key: str) -> None:
        """Nothing to do: the failed transaction took its claim with it."""

    def forget_follower(self, session: Session, openid: str, keep_key: str) -> None:
        session.connection().execute(
            delete(_LEDGER).where(
                _LEDGER.c.dedup_key.startswith(f"{openid}|", autoescape=True), _LEDGER.c.dedup_key != keep_key
            )
        )


# Where a session notes that its message was claimed in the database ledger (Redis was unreachable).
_CLAIMED_IN_DATABASE = "claimed_in_database"


class RedisLedger:
    """Ledger entries in Redis (``SET NX EX``): shared by every process, expiring by themselves.

    While Redis is unreachable the database ledger claims instead (the ``inbound_messages`` rows), so a
    retry is still answered once; a message claimed in one and retried in the other during the switch is
    caught by the form's own memory of its last message (``FormState.last_dedup_key``).
    """

    _PENDING = "pending"
    _ANSWER_PREFIX = "reply:"

    def __init__(self, guard: RedisGuard, namespace: str, commit_writes: CommitWrites) -> None:
        self._guard = guard
        self._redis = guard.client
        self._prefix = f"{namespace}:inbound:"
        self._commit_writes = commit_writes
        self._database = DatabaseLedger()

    def claim(self, session: Session, key: str, openid: str) -> Claim:
        if not self._guard.available():
            return self._claim_in_database(session, key, openid)
        # SET NX GET: the claim and, when someone was first, what they left, in one round trip. The
        # pending marker expires by itself, so a claim whose process died is taken over.
        try:
            previous = self._redis.set(
                self._prefix + key, self._PENDING, nx=True, get=True, ex=int(STALE_CLAIM.total_seconds())
            )
        except redis.RedisError as error:
            self._guard.failed(error)
            return self._claim_in_database(session, key, openid)
        self._guard.succeeded()
        if previous is None:
            return Claim(ClaimState.NEW)
        text = previous.decode()
        if text.startswith(self._ANSWER_PREFIX):
            return Claim(ClaimState.ANSWERED, text.removeprefix(self._ANSWER_PREFIX))
        return Claim(ClaimState.IN_PROGRESS)

    def record(self, session: Session, key: str, reply_xml: str) -> None:
        if session.info.get(_CLAIMED_IN_DATABASE) == key:
            self._database.record(session, key, reply_xml)
            return
        self._commit_writes.add(
            session,
            lambda pipeline: pipeline.set(
                self._prefix + key, self._ANSWER_PREFIX + reply_xml, ex=int(ANSWER_KEPT.total_seconds())
            ),
        )

    def release(self, key: str) -> None:
        if not self._guard.available():
            return  # a pending claim left in Redis expires by itself after STALE_CLAIM
        name = self._prefix + key
        try:
            if self._redis.get(name) == self._PENDING.encode():
                self._redis.delete(name)
        except redis.RedisError as error:
            self._guard.failed(error)

    def forget_follower(self, session: Session, openid: str, keep_key: str) -> None:
        self._database.forget_follower(session, openid, keep_key)  # claimed there while Redis was away
        if not self._guard.available():
            return  # what Redis holds expires by itself after ANSWER_KEPT
        # SCAN for one follower's keys: erasure is rare.
        pattern = _glob_escape(f"{self._prefix}{openid}|") + "*"
        keep = (self._prefix + keep_key).encode()
        try:
            stale = [name for name in self._redis.scan_iter(match=pattern, count=1000) if name != keep]
            if stale:
                self._redis.delete(*stale)
        except redis.RedisError as error:
            self._guard.failed(error)

    def _claim_in_database(self, session: Session, key: str, openid: str) -> Claim:
        session.info[_CLAIMED_IN_DATABASE] = key
        return self._database.claim(session, key, openid)


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis glob pattern."""
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)
