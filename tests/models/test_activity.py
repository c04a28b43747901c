"""The activity written behind: a row the database refuses is dropped alone, and the queue is bounded."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from models import Follower
from models.activity import Activity, ActivityRecorder
from tests.conftest import BACKEND


def dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("eventbot_activity_dropped_total", {"reason": reason}) or 0.0


def written_openids(sessions) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(Follower.openid)))


def test_an_openid_the_table_cannot_hold_is_dropped_and_counted_and_good_rows_are_written(sessions, clock):
    recorder = ActivityRecorder(sessions)
    before = dropped("openid length")
    for openid in ("", "o" * 65, "o-good"):
        recorder.record(Activity(openid, clock.now(), "agenda"))
    assert recorder.flush() == 1
    assert written_openids(sessions) == {"o-good"}
    assert dropped("openid length") == before + 2


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite stores a NUL character; PostgreSQL refuses it")
def test_a_row_the_database_refuses_is_dropped_alone(sessions, clock, caplog):
    recorder = ActivityRecorder(sessions)
    for openid in ("o-first", "o-\x00-refused", "o-last"):
        recorder.record(Activity(openid, clock.now()))
    assert recorder.flush() == 2
    assert written_openids(sessions) == {"o-first", "o-last"}
    assert [record.message for record in caplog.records] == ["follower activity dropped: DataError"]
    assert recorder.flush() == 0  # gone, not retried at every flush


def test_the_queue_is_bounded_while_the_database_is_away(sessions, clock):
    recorder = ActivityRecorder(sessions, max_pending=2)
    before = dropped("queue full")
    for openid in ("o-1", "o-2", "o-3"):
        recorder.record(Activity(openid, clock.now()))
    recorder.record(Activity("o-1", clock.now()))  # already queued: merged, not refused
    assert dropped("queue full") == before + 1
    assert recorder.flush() == 2
    assert written_openids(sessions) == {"o-1", "o-2"}
