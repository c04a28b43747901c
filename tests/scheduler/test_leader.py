"""Leader election against the real database: a lease row (any backend), an advisory lock (PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from models.clock import ManualClock
from scheduler.leader import AdvisoryLock, LeaseLock, leader_lock
from tests.conftest import BACKEND, BEFORE_EVENT


def test_lease_is_held_by_one_process_until_it_lapses(engines):
    clock = ManualClock(BEFORE_EVENT)
    first = LeaseLock(engines(), "first", duration=timedelta(seconds=30), clock=clock)
    second = LeaseLock(engines(), "second", duration=timedelta(seconds=30), clock=clock)

    assert first.acquire() is True
    assert second.acquire() is False
    clock.advance(timedelta(seconds=20))
    assert first.acquire() is True  # renewed: good for another 30 s
    clock.advance(timedelta(seconds=20))
    assert second.acquire() is False
    # The first process died: its lease runs out and the second takes over.
    clock.advance(timedelta(seconds=11))
    assert second.acquire() is True
    assert first.acquire() is False


def test_released_lease_goes_to_the_next_process_at_once(engines):
    clock = ManualClock(BEFORE_EVENT)
    first, second = (LeaseLock(engines(), name, clock=clock) for name in ("first", "second"))
    first.acquire()

    first.release()

    assert second.acquire() is True


postgresql_only = pytest.mark.skipif(BACKEND != "postgresql", reason="advisory locks are PostgreSQL's")


@postgresql_only
def test_advisory_lock_is_held_by_one_connection_at_a_time(engines):
    first, second = AdvisoryLock(engines()), AdvisoryLock(engines())

    assert first.acquire() is True
    assert second.acquire() is False
    assert first.acquire() is True

    first.release()
    assert second.acquire() is True
    second.release()


@postgresql_only
def test_killed_leaders_advisory_lock_passes_to_another_process(engines):
    first, second = AdvisoryLock(engines()), AdvisoryLock(engines())
    first.acquire()
    admin = engines()

    # The leader's database session ends (its process was killed): the server frees the lock.
    with admin.connect() as connection:
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )

    assert second.acquire() is True
    assert first.acquire() is False
    second.release()


def test_the_lock_suits_the_backend(engines):
    lock = leader_lock(engines())
    assert isinstance(lock, AdvisoryLock if BACKEND == "postgresql" else LeaseLock)
