"""Each signed (timestamp, nonce) pair is bound to the body it first came with, for the freshness window.

WeChat's URL signature covers the token, timestamp and nonce, not the body: whoever holds one signed
query string could post any body with it while the timestamp is fresh. WeChat's own retry of a push
sends the same body again, so "same pair, same body" is accepted and "same pair, another body" refused.
Shared by every process: Redis (``SET NX GET``) when configured and reachable, else the database; when
neither answers, the push is accepted unbound (logged) rather than refused.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta, timezone

import redis
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from models.inbound import SignedPush
from models.redis_guard import RedisGuard

logger = logging.getLogger(__name__)

# A timestamp is fresh from 300 s before it to 300 s after it: a binding must outlive both ends.
BINDING_KEPT = timedelta(seconds=660)
# Expired bindings are deleted by the database path every this many bindings.
PRUNE_EVERY = 256
# Bindings this process made or saw, kept to answer WeChat's retries without a round trip (a binding
# never changes, so a copy cannot go wrong); when full it starts afresh.
KNOWN_KEPT = 4096

_TABLE = SignedPush.__table__
_INSERT_IGNORING_CONFLICT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class PushBindings:
    """``bind`` says whether a signed pair may carry this body; Redis first, the database when it fails."""

    def __init__(self, sessions: sessionmaker[Session], guard: RedisGuard | None, namespace: str) -> None:
        self._sessions = sessions
        self._guard = guard
        self._prefix = f"{namespace}:signed:"
        self._binds = 0
        self._known: dict[str, str] = {}

    def bind(self, timestamp: str, nonce: str, body: bytes) -> bool:
        """True when the pair is new (now bound to ``body``) or came with this same body before."""
        pair, digest = f"{timestamp}|{nonce}", body_digest(body)
        known = self._known.get(pair)
        if known is None:
            try:
                known = self._bind_shared(pair, digest)
            except SQLAlchemyError as error:
                # Neither store answers: accepted, as WeChat's pushes must stay answered through an outage
                # (the binding guards against replays of a leaked URL, a rarer harm than silence).
                logger.warning("no store for signed-push bindings; accepting unbound (%s)", type(error).__name__)
                return True
            if len(self._known) >= KNOWN_KEPT:
                self._known = {}
            self._known[pair] = known
        return known == digest

    def _bind_shared(self, pair: str, digest: str) -> str:
        """The digest the pair is bound to across processes: ``digest`` if it was free."""
        if self._guard is not None and self._guard.available():
            try:
                previous = self._guard.client.set(
                    self._prefix + pair, digest, nx=True, get=True, ex=int(BINDING_KEPT.total_seconds())
                )
            except redis.RedisError as error:
                self._guard.failed(error)  # logged once per outage; the database holds bindings meanwhile
            else:
                self._guard.succeeded()
                return digest if previous is None else previous.decode()
        return self._bind_in_database(pair, digest)

    def _bind_in_database(self, pair: str, digest: str) -> str:
        now = datetime.now(timezone.utc)  # the signature's freshness follows real time, not the event clock
        with self._sessions.begin() as session:
            connection = session.connection()
            inserted = connection.execute(
                _INSERT_IGNORING_CONFLICT[connection.dialect.name](_TABLE)
                .values(timestamp_nonce=pair, body_sha256=digest, bound_at=now)
                .on_conflict_do_nothing(index_elements=["timestamp_nonce"])
                .returning(_TABLE.c.timestamp_nonce)
            ).first()
            if inserted is None:
                return connection.execute(
                    select(_TABLE.c.body_sha256).where(_TABLE.c.timestamp_nonce == pair)
                ).scalar_one()
            self._binds += 1
            if self._binds % PRUNE_EVERY == 0:
                connection.execute(delete(_TABLE).where(_TABLE.c.bound_at < now - BINDING_KEPT))
        return digest
