"""Redis writes that take effect with a database transaction's commit, all sent in one ``MULTI``.

On the production path a message's transaction ends with several Redis writes (the reply kept for
WeChat's retries, the follower's form progress and its lock). Each is only true once the database
commit is, so they wait for ``after_commit``; and since a round trip on loopback costs more than the
writes themselves, they leave together. A rollback drops them.
"""

from __future__ import annotations

from collections.abc import Callable

import redis
from redis.client import Pipeline
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

Write = Callable[[Pipeline], None]
_PENDING = "redis_writes_at_commit"


class CommitWrites:
    """Queue Redis writes on a session; they run in one transaction pipeline right after it commits."""

    def __init__(self, client: redis.Redis, sessions: sessionmaker[Session]) -> None:
        self._redis = client
        event.listen(sessions, "after_commit", self._send)
        event.listen(sessions, "after_soft_rollback", self._drop)

    def add(self, session: Session, write: Write) -> None:
        """Run ``write(pipeline)`` when ``session`` commits; called at commit, so it sees the final state."""
        session.info.setdefault(_PENDING, []).append(write)

    def _send(self, session: Session) -> None:
        writes = session.info.pop(_PENDING, None)
        if not writes:
            return
        with self._redis.pipeline(transaction=True) as pipeline:
            for write in writes:
                write(pipeline)
            pipeline.execute()

    def _drop(self, session: Session, previous_transaction) -> None:
        if previous_transaction.parent is None:  # the message's transaction, not a savepoint
            session.info.pop(_PENDING, None)
