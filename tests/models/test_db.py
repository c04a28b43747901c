"""The engine under concurrency: threads and processes writing to one database all get their turn."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

import models.db
from bot.app import HANDLER_THREADS
from models.db import create_db_engine
from tests.conftest import BACKEND

THREADS = 8
WRITES_PER_THREAD = 20


def test_concurrent_read_modify_write_transactions_all_commit_without_lost_updates(database_url):
    engine = create_db_engine(database_url)
    counter = Table("bench_counter_probe", MetaData(), Column("id", Integer, primary_key=True), Column("value", Integer))
    counter.create(engine)
    try:
        with engine.begin() as connection:
            connection.execute(counter.insert().values(id=1, value=0))

        def increment(_worker: int) -> None:
            for _ in range(WRITES_PER_THREAD):
                with engine.begin() as connection:
                    value = connection.scalar(select(counter.c.value).where(counter.c.id == 1).with_for_update())
                    connection.execute(update(counter).where(counter.c.id == 1).values(value=value + 1))

        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(increment, range(THREADS)))

        with engine.connect() as connection:
            assert connection.scalar(select(counter.c.value)) == THREADS * WRITES_PER_THREAD
    finally:
        counter.drop(engine)
        engine.dispose()



@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's single write lock")
def test_a_transaction_waits_for_another_process_write_lock_and_proceeds_when_it_is_released(database_url):
    engine = create_db_engine(database_url)
    other_process = sqlite3.connect(make_url(database_url).database, isolation_level=None, check_same_thread=False)
    other_process.execute("BEGIN IMMEDIATE")
    threading.Timer(0.2, other_process.commit).start()
    try:
        with engine.begin() as connection:
            assert connection.scalar(select(1)) == 1
    finally:
        other_process.close()
        engine.dispose()


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's single write lock")
def test_a_write_lock_never_released_ends_in_database_is_locked(database_url, monkeypatch):
    monkeypatch.setattr(models.db, "BUSY_TIMEOUT_SECONDS", 0.05)
    engine = create_db_engine(database_url)
    other_process = sqlite3.connect(make_url(database_url).database, isolation_level=None, check_same_thread=False)
    other_process.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="locked"), engine.begin():
            pass
    finally:
        other_process.rollback()
        other_process.close()
        engine.dispose()


def test_every_handler_thread_can_hold_a_connection_at_once(database_url):
    engine = create_db_engine(database_url)
    connections = []
    try:
        # A pool smaller than the threads would block here (and time out) instead of connecting.
        for _thread in range(HANDLER_THREADS):
            connections.append(engine.pool.connect())
        assert len({id(connection.driver_connection) for connection in connections}) == HANDLER_THREADS
    finally:
        for connection in connections:
            connection.close()
        engine.dispose()
