"""Whether a follower may be inside a registration form: the one question the content-only path asks.

A message from a follower inside a form belongs to the form (it may be the answer to a question), so
only followers certainly outside one can be answered without the database transaction. The answer may
say "maybe" when no form is open (then the full path decides), never "no" while one is.

- On SQLite the question is one indexed read of ``form_states``, in-process.
- With Redis, a marker key per open form, which ``models.form_store.RedisForms`` writes with the form
  (expiring with it, deleted when it closes). PostgreSQL itself is not asked: a round trip per message is
  what the content-only path exists to avoid.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime

import redis
from sqlalchemy import Engine, bindparam, select

from models.form_store import open_form_prefix
from models.registration import FormState

_FORMS = FormState.__table__
_OPEN_FORM = select(_FORMS.c.openid).where(
    _FORMS.c.openid == bindparam("openid"), _FORMS.c.state.is_not(None), _FORMS.c.expires_at > bindparam("now")
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
    """The open-form markers ``RedisForms`` keeps in Redis; shared by every process and replica."""

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self._redis = client
        self._prefix = open_form_prefix(namespace)
        self._connections = threading.local()

    def maybe_open_among(self, openids: Sequence[str], now: datetime) -> set[str]:
        # One connection per asking thread (the event loop's, in practice), held rather than borrowed from
        # the client's pool: the pool and retry layers cost more CPU than the round trip itself.
        connection = getattr(self._connections, "redis", None)
        if connection is None:
            connection = self._connections.redis = self._redis.connection_pool.make_connection()
        try:
            connection.send_command("MGET", *(self._prefix + openid for openid in openids))
            markers = connection.read_response()
        except redis.RedisError:
            # Unsure, so "maybe": the database path answers (and reports Redis being down, if it is).
            connection.disconnect()
            return set(openids)
        return {openid for openid, marker in zip(openids, markers) if marker is not None}
