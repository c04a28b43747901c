"""Redis writes that take effect with a database transaction's commit, all sent in one ``MULTI``.

On the production path a message's transaction ends with Redis writes (the reply kept for WeChat's
retries). Each is only true once the database commit is, so they wait for ``after_commit``; and since a
round trip on loopback costs more than the writes themselves, they leave together. A rollback drops them;
an unreachable Redis drops them too (they are copies).
"""

from __future__ import annotations

from collections.abc import Callable

import redis
from redis.client import Pipeline
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from models.redis_guard import RedisGuard

Write = Callable[[Pipeline], None]
_PENDING = "redis_writes_at_commit"


class CommitWrites:
    """Queue Redis writes on a session; they run in one transaction pipeline right after it commits."""

    def __init__(self, guard: RedisGuard, sessions: sessionmaker[Session]) -> None:
        self._guard = guard
        event.listen(sessions, "after_commit", self._send)
        event.listen(sessions, "after_soft_rollback", self._drop)

    def add(self, session: Session, write: Write) -> None:
        """Run ``write(pipeline)`` when ``session`` commits; called at commit, so it sees the final state."""
        session.info.setdefault(_PENDING, []).append(write)

    def _send(self, session: Session) -> None:
        writes = session.info.pop(_PENDING, None)
        if not writes:
            return
        if not self._guard.available():
            return
        try:
            with self._guard.client.pipeline(transaction=True) as pipeline:
                for write in writes:
                    write(pipeline)
                pipeline.execute()
        except redis.RedisError as error:
            # The database committed: only the copy for WeChat's retries is lost (the form remembers its
            # last reply too). Raising here would turn a committed message into an apology.
            self._guard.failed(error)
        else:
            self._guard.succeeded()

    def _drop(self, session: Session, previous_transaction) -> None:
        if previous_transaction.parent is None:  # the message's transaction, not a savepoint
            session.info.pop(_PENDING, None)
