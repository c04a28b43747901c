"""Whether a follower may be inside a registration form: the one question the content-only path asks.

A message from a follower inside a form belongs to the form (it may be the answer to a question), so
only followers certainly outside one can be answered without the database transaction. The answer may
say "maybe" when no form is open (then the full path decides), never "no" while one is.

- On SQLite the question is one indexed read of ``form_states``, in-process.
- With Redis, a marker key per open form, which ``models.form_store.DatabaseForms`` writes with the form
  (expiring with it, deleted when it closes), trusted only while they are known complete. PostgreSQL
  itself is not asked: a round trip per message is what the content-only path exists to avoid.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

import redis
from redis.client import Pipeline
from sqlalchemy import Engine, bindparam, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from models.clock import Clock
from models.redis_guard import RedisGuard
from models.registration import FormState, OpenUntilExpiry

logger = logging.getLogger(__name__)

# Added to the open-form marker's life: the form's expiry is computed on the event clock, the marker's in Redis.
MARKER_MARGIN_SECONDS = 60
# Longer than reading the open forms takes; a rebuilder that died frees the way by then.
REBUILD_LOCK_SECONDS = 30

_FORMS = FormState.__table__
_OPEN_FORM = select(_FORMS.c.openid).where(
    _FORMS.c.openid == bindparam("openid"), _FORMS.c.state.is_not(None), _FORMS.c.expires_at > bindparam("now")
)
_OPEN_FORMS = select(_FORMS.c.openid, _FORMS.c.expires_at).where(
    _FORMS.c.state.is_not(None), _FORMS.c.expires_at > bindparam("now")
)


class FormPresence:
    """Answers "may these followers be inside a form?", never "no" wrongly."""

    def maybe_open_among(self, openids: Sequence[str], now: datetime) -> set[str]:
        """The followers among ``openids`` who may have an open form at ``now``."""
        raise NotImplementedError

    def may_be_open(self, openid: str, now: datetime) -> bool:
        """False only when ``openid`` certainly has no open form at ``now``."""
        return bool(self.maybe_open_among([openid], now))


class SqliteFormPresence(FormPresence):
    """Reads ``form_states`` of a SQLite file directly, one connection per thread, outside the engine.

    Why not the engine: a transaction there takes SQLite's write lock up front (``models.db``), and a
    pooled connection per asking thread would drain the pool the handlers need. A plain autocommit read
    in WAL mode waits for no writer.
    """

    @staticmethod
    def can_read(engine: Engine) -> bool:
        """Whether ``engine`` is a SQLite file (an in-memory database cannot be read from another connection)."""
        return engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")

    def __init__(self, engine: Engine) -> None:
        if not self.can_read(engine):
            raise ValueError("not a SQLite file another connection can read")
        self._database = engine.url.database
        self._sql = str(_OPEN_FORM.compile(dialect=engine.dialect))
        self._time_to_column = _FORMS.c.expires_at.type.bind_processor(engine.dialect)
        self._connections = threading.local()

    def maybe_open_among(self, openids: Sequence[str], now: datetime) -> set[str]:
        connection = getattr(self._connections, "sqlite", None)
        if connection is None:
            connection = self._connections.sqlite = sqlite3.connect(self._database, isolation_level=None)
        column_now = self._time_to_column(now)
        return {openid for openid in openids if connection.execute(self._sql, (openid, column_now)).fetchone()}


class RedisFormPresence(FormPresence):
    """Open-form markers in Redis, a copy of ``form_states`` that every process and replica reads.

    The markers are trusted only while the ``ready`` key stands beside them: it is set when they were
    rebuilt from the database, and is missing after a Redis restart without persistence or deleted by a
    process that could not write a marker during an outage (``RedisGuard.on_recovery``). Without it, or
    without Redis, every follower is "maybe" (the database path answers) until a rebuild sets it again.
    """

    def __init__(self, guard: RedisGuard, namespace: str, sessions: sessionmaker[Session], clock: Clock) -> None:
        self._guard = guard
        self._redis = guard.client
        self._prefix = f"{namespace}:open-form:"
        self._ready_key = f"{namespace}:open-form-markers-ready"
        self._rebuild_lock_key = f"{namespace}:open-form-markers-rebuild"
        self._sessions = sessions
        self._clock = clock
        self._rebuilding = threading.Lock()
        guard.on_recovery(self.distrust)

    def maybe_open_among(self, openids: Sequence[str], now: datetime) -> set[str]:
        if not self._guard.available():
            return set(openids)
        try:
            ((ready, *markers),) = self._guard.round_trip(
                [("MGET", self._ready_key, *(self._prefix + openid for openid in openids))]
            )
        except redis.RedisError:
            return set(openids)
        if ready is None:
            self.rebuild_in_background()
            return set(openids)
        return {openid for openid, marker in zip(openids, markers) if marker is not None}

    def mark_open(self, forms: Sequence[OpenUntilExpiry]) -> None:
        """Set the markers of open ``forms`` (before their transaction commits); expiring with each form."""
        now = self._clock.now()
        self._write(lambda pipeline: [
            pipeline.set(self._prefix + form.openid, "1", ex=_marker_seconds(form, now))
            for form in forms if form.is_open(now)
        ])

    def unmark(self, openids: Sequence[str]) -> None:
        """Delete the markers of forms that closed (after their transaction committed)."""
        if openids:
            self._write(lambda pipeline: pipeline.delete(*(self._prefix + openid for openid in openids)))

    def distrust(self) -> None:
        """Stop trusting the markers until they are rebuilt (this process missed writes during an outage)."""
        self._write(lambda pipeline: pipeline.delete(self._ready_key))

    def rebuild_in_background(self) -> None:
        """Start a rebuild in a daemon thread unless this process already runs one."""
        if self._rebuilding.acquire(blocking=False):
            threading.Thread(target=self._rebuild_and_release, name="form-markers", daemon=True).start()

    def rebuild(self) -> bool:
        """Write a marker for every open form in the database, then trust the markers again; one process
        at a time. False when Redis or the database could not be reached (the markers stay untrusted)."""
        if not self._guard.available():
            return False
        try:
            if not self._redis.set(self._rebuild_lock_key, "1", nx=True, ex=REBUILD_LOCK_SECONDS):
                return False  # another process is at it
            now = self._clock.now()
            with self._sessions() as session:
                open_forms = session.execute(_OPEN_FORMS, {"now": now}).all()
            with self._redis.pipeline(transaction=False) as pipeline:
                for form in open_forms:
                    pipeline.set(self._prefix + form.openid, "1", ex=_marker_seconds(form, now))
                pipeline.set(self._ready_key, "1")
                pipeline.delete(self._rebuild_lock_key)
                pipeline.execute()
        except redis.RedisError as error:
            self._guard.failed(error)
            return False
        except SQLAlchemyError:
            logger.warning("rebuilding the open-form markers failed: the database is unreachable")
            self._write(lambda pipeline: pipeline.delete(self._rebuild_lock_key))
            return False
        logger.info("open-form markers rebuilt from the database (%d open forms)", len(open_forms))
        return True

    def _rebuild_and_release(self) -> None:
        try:
            self.rebuild()
        finally:
            self._rebuilding.release()

    def _write(self, queue: Callable[[Pipeline], object]) -> None:
        """Send the writes ``queue`` puts on a pipeline; a failure only tells the guard (the markers are
        a copy: the recovery distrusts them)."""
        if not self._guard.available():
            return
        try:
            with self._redis.pipeline(transaction=False) as pipeline:
                queue(pipeline)
                pipeline.execute()
        except redis.RedisError as error:
            self._guard.failed(error)
        else:
            self._guard.succeeded()


def _marker_seconds(form, now: datetime) -> int:
    # The form's expiry is on the event clock, the marker's in Redis: a margin covers the difference.
    return math.ceil((form.expires_at - now).total_seconds()) + MARKER_MARGIN_SECONDS
