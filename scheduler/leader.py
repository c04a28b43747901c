"""Leader election: of all the processes sharing a database, exactly one runs the scheduler.

PostgreSQL: a session-level advisory lock held on a dedicated connection; the server frees it when that
connection ends, so a killed leader is replaced at once. SQLite (one machine): a lease row renewed by its
holder; when the holder dies the lease runs out and another process takes over.

Leases and locks measure real time, not the event clock: they are about processes staying alive.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
import zlib
from datetime import timedelta, timezone
from typing import Protocol

from sqlalchemy import Connection, Engine, delete, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from models.clock import Clock, SystemClock
from models.reminder import SchedulerLease

log = logging.getLogger(__name__)

SCHEDULER_LOCK = "eventbot-scheduler"
LEASE_DURATION = timedelta(seconds=30)


class LeaderLock(Protocol):
    """Held by at most one process at a time."""

    def acquire(self) -> bool:
        """Take the lock, or keep it when already held; False when another process holds it."""

    def release(self) -> None:
        """Give the lock up so another process may take it."""


def holder_id() -> str:
    """Names this process in a lease: host, pid and a random part (pids repeat across containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class AdvisoryLock:
    """PostgreSQL: ``pg_try_advisory_lock`` on a connection kept open for as long as the lock is held."""

    def __init__(self, engine: Engine, name: str = SCHEDULER_LOCK) -> None:
        self._engine = engine
        # Advisory locks take a bigint; crc32 gives a stable one for the lock's name.
        self._key = zlib.crc32(name.encode())
        self._connection: Connection | None = None

    def acquire(self) -> bool:
        if self._connection is not None:
            return self._still_connected()
        connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        acquired = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}).scalar_one()
        if acquired:
            self._connection = connection
        else:
            connection.close()
        return bool(acquired)

    def _still_connected(self) -> bool:
        # The lock lives as long as the session: a working connection still holds it.
        try:
            self._connection.execute(text("SELECT 1"))
        except DBAPIError:
            log.warning("scheduler lock connection lost; giving up leadership")
            self._connection.invalidate()
            self._connection = None
            return False
        return True

    def release(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
        finally:
            self._connection.close()
            self._connection = None


class LeaseLock:
    """A lease row ``(name, holder, expires_at)``: taken when absent or expired, renewed by its holder."""

    def __init__(
        self,
        engine: Engine,
        holder: str | None = None,
        *,
        name: str = SCHEDULER_LOCK,
        duration: timedelta = LEASE_DURATION,
        clock: Clock | None = None,
    ) -> None:
        self._engine = engine
        self.holder = holder or holder_id()
        self._name = name
        self._duration = duration
        self._clock = clock or SystemClock(timezone.utc)

    def acquire(self) -> bool:
        now = self._clock.now()
        # SQLite transactions start with BEGIN IMMEDIATE (models.db), so read-then-write is atomic.
        with Session(self._engine) as session, session.begin():
            lease = session.scalar(select(SchedulerLease).where(SchedulerLease.name == self._name))
            if lease is None:
                session.add(SchedulerLease(name=self._name, holder=self.holder, expires_at=now + self._duration))
                return True
            if lease.holder != self.holder and lease.expires_at > now:
                return False
            lease.holder, lease.expires_at = self.holder, now + self._duration
            return True

    def release(self) -> None:
        with Session(self._engine) as session, session.begin():
            session.execute(
                delete(SchedulerLease).where(SchedulerLease.name == self._name, SchedulerLease.holder == self.holder)
            )


def leader_lock(engine: Engine) -> LeaderLock:
    """The lock that suits the database: an advisory lock on PostgreSQL, a lease elsewhere."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine)
    return LeaseLock(engine)
