"""The engine under concurrency: many threads writing through one engine all get their turn."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Column, Integer, MetaData, Table, select, update

from models.db import create_db_engine

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

