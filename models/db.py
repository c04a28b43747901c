"""Engine and session factory, with the per-backend settings that concurrency needs."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

# How long a writer waits for SQLite's single write lock before giving up with "database is locked".
BUSY_TIMEOUT_SECONDS = 10
LOCK_POLL_SECONDS = 0.001
_HOLDS_WRITER_TURN = "eventbot_holds_writer_turn"
# Connections one process may open: more than the app's handler threads (``bot.app.HANDLER_THREADS``)
# plus background work, so no handler waits for a connection. With the pool smaller than the threads,
# the threads left waiting at the start of a burst waited seconds (Q&A bench: replies past the budget).
MAX_CONNECTIONS = 40


def _prepare_sqlite(engine: Engine) -> None:
    # SQLite lets one transaction write at a time, and every transaction here takes the write lock up front.
    # Threads of one process take turns on a Python lock first: SQLite's own busy handler polls with sleeps
    # of 1 to 100 ms, so under a burst the handler threads slept there most of the time (bench/RESULTS.md,
    # item 1). Other processes still queue on SQLite's lock.
    writer_turn = threading.Lock()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # pysqlite's own transaction handling defers BEGIN; take control so BEGIN IMMEDIATE is possible.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers work beside one writer; busy_timeout makes writers queue instead of failing.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        # The turn is bounded: a thread that opens a second connection while holding a transaction falls
        # back to SQLite's busy handling instead of waiting on itself forever.
        # (``connection.info`` belongs to the pooled DBAPI connection, so the turn ends at its check-in.)
        if not connection.info.get(_HOLDS_WRITER_TURN):
            connection.info[_HOLDS_WRITER_TURN] = writer_turn.acquire(timeout=BUSY_TIMEOUT_SECONDS)
        # Every transaction takes the write lock up front: a deferred transaction that reads and later
        # writes can fail with "database is locked" under concurrency instead of waiting its turn.
        begin_immediate(connection.connection.driver_connection)

    @event.listens_for(engine.pool, "checkin")
    def _end_turn(_dbapi_connection, connection_record) -> None:
        # At check-in, which every connection reaches (also after an error), and not at the commit event:
        # that one fires before COMMIT runs, while SQLite's lock is still held.
        if connection_record.info.pop(_HOLDS_WRITER_TURN, False):
            writer_turn.release()


def begin_immediate(
    sqlite_connection, *, wait_seconds: float = BUSY_TIMEOUT_SECONDS, poll_seconds: float = LOCK_POLL_SECONDS,
    busy_timeout_seconds: float = BUSY_TIMEOUT_SECONDS,
) -> None:
    """BEGIN IMMEDIATE, waiting up to ``wait_seconds`` for another process's write lock by polling every
    ``poll_seconds``; the connection's own busy timeout, ``busy_timeout_seconds``, is off meanwhile.

    SQLite's own busy handler sleeps 1, 2, 5, 10 … 100 ms between polls, much longer than a transaction
    here holds the lock, so with two worker processes the waiting one slept on while the lock was free.
    """
    deadline = time.monotonic() + wait_seconds
    if busy_timeout_seconds:  # a connection without one (0) needs no switching, and no two extra statements
        sqlite_connection.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                sqlite_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise OperationalError("BEGIN IMMEDIATE", None, error) from error
                time.sleep(poll_seconds)
    finally:
        if busy_timeout_seconds:
            sqlite_connection.execute(f"PRAGMA busy_timeout={int(busy_timeout_seconds * 1000)}")


def create_db_engine(database_url: str) -> Engine:
    """An engine for ``database_url``; for SQLite the folder is created and WAL mode switched on.

    ``hide_parameters``: a failed statement's error (logged with its traceback) would otherwise carry the
    values it was given: names, phone numbers, openids.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_SECONDS}, pool_size=MAX_CONNECTIONS,
            hide_parameters=True,
        )
        _prepare_sqlite(engine)
        return engine
    # Every connection stays pooled: "overflow" connections are closed on return, so a burst above the
    # pool size made PostgreSQL fork a new backend for most messages (py-spy: connects under Q&A load).
    return create_engine(url, pool_size=MAX_CONNECTIONS, max_overflow=0, pool_pre_ping=True, hide_parameters=True)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
