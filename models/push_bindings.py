"""Each signed (timestamp, nonce) pair is bound to the body it first came with, for the freshness window.

WeChat's URL signature covers the token, timestamp and nonce, not the body: whoever holds one signed
query string could post any body with it while the timestamp is fresh. WeChat's own retry of a push
sends the same body again, so "same pair, same body" is accepted and "same pair, another body" refused.
Shared by every process: Redis (``SET NX GET``) when configured and reachable; on a SQLite database a
file of its own beside it; else the database; when none answers, the push is accepted unbound (logged)
rather than refused.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import redis
from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from models.db import begin_immediate
from models.inbound import SignedPush
from models.redis_guard import RedisGuard

logger = logging.getLogger(__name__)

# A timestamp is fresh from 300 s before it to 300 s after it: a binding must outlive both ends.
BINDING_KEPT = timedelta(seconds=660)
# Expired bindings are deleted by the database path after about this many new bindings.
PRUNE_EVERY = 256
# Bindings this process made or saw, kept to answer WeChat's retries without a round trip (a binding
# never changes, so a copy cannot go wrong); when full it starts afresh.
KNOWN_KEPT = 4096

_TABLE = SignedPush.__table__
_INSERT_IGNORING_CONFLICT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class SqliteSidePushes:
    """Bindings in a small SQLite file of their own beside the database file, written on the event loop.

    Why not the database's own ``signed_pushes``: every plaintext push writes a binding, and SQLite lets
    one transaction write at a time; in the main file each batch would queue behind handler transactions
    (form steps, the activity batch) and need a worker thread. Here the lock is held for microseconds.
    Bindings live minutes, so the file is written without fsync (``synchronous=OFF``).
    """

    # Lock waits are polled this often, for at most LOCK_WAIT_SECONDS (then the database decides).
    LOCK_POLL_SECONDS = 0.0002
    LOCK_WAIT_SECONDS = 0.5

    def __init__(self, path: Path) -> None:
        self._path = path
        self._connections = threading.local()
        self._binds = 0

    def bind_many(self, wanted: dict[str, str]) -> dict[str, str]:
        """The digest each pair of ``wanted`` is bound to, binding the free ones; raises ``sqlite3.Error`` or,
        when the lock stays taken, SQLAlchemy's ``OperationalError``."""
        connection = self._connection()
        now = time.time()
        # Polled finely: this runs on the event loop, where SQLite's busy handler would sleep whole milliseconds.
        begin_immediate(connection, wait_seconds=self.LOCK_WAIT_SECONDS, poll_seconds=self.LOCK_POLL_SECONDS,
                        busy_timeout_seconds=0)
        try:
            connection.executemany(
                "INSERT OR IGNORE INTO signed_pushes VALUES (?, ?, ?)",
                [(pair, digest, now) for pair, digest in wanted.items()],
            )
            pairs = list(wanted)
            bound = dict(connection.execute(
                f"SELECT pair, body_sha256 FROM signed_pushes WHERE pair IN ({','.join('?' * len(pairs))})", pairs
            ).fetchall())
            self._binds += len(wanted)
            if self._binds >= PRUNE_EVERY:
                self._binds = 0
                connection.execute("DELETE FROM signed_pushes WHERE bound_at < ?", (now - BINDING_KEPT.total_seconds(),))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return bound

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._connections, "sqlite", None)
        if connection is None:
            connection = sqlite3.connect(self._path, isolation_level=None, timeout=0, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=OFF")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS signed_pushes (pair TEXT PRIMARY KEY, body_sha256 TEXT NOT NULL,"
                " bound_at REAL NOT NULL)"
            )
            connection.execute("CREATE INDEX IF NOT EXISTS signed_pushes_bound_at ON signed_pushes (bound_at)")
            self._connections.sqlite = connection
        return connection


def side_pushes_file(engine: Engine) -> SqliteSidePushes | None:
    """The side file of a SQLite database file; None for other databases and in-memory SQLite."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    database = Path(engine.url.database)
    return SqliteSidePushes(database.with_name(database.name + ".signed-pushes"))


class PushBindings:
    """Which body each signed pair is bound to: this process's memory, then Redis, then the database.

    Two steps, so that a caller on the event loop can do the first there and only the second in a worker
    thread: ``bound_without_transaction`` settles what it can in one Redis round trip or SQLite side-file
    write, and ``bind_in_database`` settles the rest in one transaction.
    """

    def __init__(
        self, sessions: sessionmaker[Session], guard: RedisGuard | None, namespace: str,
        side_file: SqliteSidePushes | None = None,
    ) -> None:
        self._sessions = sessions
        self._guard = guard
        self._side_file = side_file
        self._prefix = f"{namespace}:signed:"
        self._binds = 0
        self._known: dict[str, str] = {}

    def bound_without_transaction(self, wanted: dict[str, str]) -> dict[str, str]:
        """For the pairs of ``wanted`` (pair → body digest) this process knows, or Redis or the side file
        answers for, the digest each is bound to (the wanted one if it was free); the others are left to
        the database."""
        settled = {pair: self._known[pair] for pair in wanted if pair in self._known}
        asked = [pair for pair in wanted if pair not in settled]
        if asked and self._guard is not None and self._guard.available():
            commands = [
                ("SET", self._prefix + pair, wanted[pair], "NX", "GET", "EX", int(BINDING_KEPT.total_seconds()))
                for pair in asked
            ]
            try:
                replies = self._guard.round_trip(commands)
            except redis.RedisError:
                pass  # the guard logged it (once per outage); the database holds bindings meanwhile
            else:
                for pair, previous in zip(asked, replies):
                    if not isinstance(previous, redis.RedisError):
                        settled[pair] = self._remember(pair, wanted[pair] if previous is None else previous.decode())
                asked = [pair for pair in asked if pair not in settled]
        if asked and self._side_file is not None:
            try:
                bound = self._side_file.bind_many({pair: wanted[pair] for pair in asked})
            except (sqlite3.Error, SQLAlchemyError) as error:
                logger.warning("the signed-push side file failed (%s); binding in the database", type(error).__name__)
            else:
                settled |= {pair: self._remember(pair, bound[pair]) for pair in asked}
        return settled

    def bind_in_database(self, wanted: dict[str, str]) -> dict[str, str]:
        """The digest each pair of ``wanted`` is bound to in the database, binding the free ones, all in
        one transaction. With the database unreachable too, each is taken as bound to its own body (logged):
        WeChat's pushes must stay answered through an outage, and a replayed URL is the rarer harm."""
        now = datetime.now(timezone.utc)  # the signature's freshness follows real time, not the event clock
        try:
            with self._sessions.begin() as session:
                connection = session.connection()
                connection.execute(
                    _INSERT_IGNORING_CONFLICT[connection.dialect.name](_TABLE).on_conflict_do_nothing(
                        index_elements=["timestamp_nonce"]
                    ),
                    [{"timestamp_nonce": pair, "body_sha256": digest, "bound_at": now} for pair, digest in wanted.items()],
                )
                bound = dict(
                    connection.execute(
                        select(_TABLE.c.timestamp_nonce, _TABLE.c.body_sha256).where(
                            _TABLE.c.timestamp_nonce.in_(list(wanted))
                        )
                    ).all()
                )
                self._binds += len(wanted)
                if self._binds >= PRUNE_EVERY:
                    self._binds = 0
                    connection.execute(delete(_TABLE).where(_TABLE.c.bound_at < now - BINDING_KEPT))
        except SQLAlchemyError as error:
            logger.warning("no store for signed-push bindings; accepting unbound (%s)", type(error).__name__)
            return dict(wanted)
        return {pair: self._remember(pair, bound[pair]) for pair in wanted}

    def _remember(self, pair: str, digest: str) -> str:
        if len(self._known) >= KNOWN_KEPT:
            self._known = {}
        self._known[pair] = digest
        return digest
