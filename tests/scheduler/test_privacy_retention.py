"""Retention of personal data: the scheduled job erases personal fields of ended events after [privacy]
keep_days_after_event and keeps the counts; the purge CLI and its dry run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli import app as cli
from models import Registration, organizer
from models.registration import ONLINE
from scheduler.jobs import JobQueue, retention_job
from tests.conftest import REPO_ROOT
from tests.organizer_factories import add_registration

EVENT_ENDS = "2023-03-26T17:00:00+08:00"


@pytest.fixture
def queue(settings, engines, clock):
    made = JobQueue(settings, engines(), clock)
    made.start(paused=True)
    made.rebuild(settings.content)
    yield made
    made.shutdown()


@pytest.fixture
def registered(sessions, clock):
    """Four registrations of the shipped event: two confirmed (one checked in, one online), one waitlisted,
    one cancelled, from two QR channels."""
    now = clock.now()
    with sessions.begin() as session:
        add_registration(session, "o-a", now=now, name="甲一", phone="13800000001", channel="poster", capacity=1, checked_in=True)
        add_registration(session, "o-b", now=now, name="乙二", phone="13800000002", channel="poster", capacity=1)
        add_registration(session, "o-c", now=now, name="丙三", phone="13800000003", channel="wall", attendance=ONLINE)
        add_registration(session, "o-d", now=now, name="丁四", phone="13800000004", capacity=1, cancelled=True)


def counts(sessions, settings, clock):
    with sessions() as session:
        stats = organizer.event_stats(session, settings.content, settings.content.events[0], clock.now())
        attendance = sorted(session.scalars(select(Registration.attendance)))
    return (stats.confirmed, stats.waitlisted, stats.cancelled, stats.checked_in, stats.by_channel, attendance)


def personal_fields(sessions) -> list[tuple]:
    with sessions() as session:
        return [tuple(row) for row in session.execute(select(Registration.name, Registration.phone)).all()]


def test_the_job_erases_personal_fields_after_the_retention_period_and_keeps_the_counts(
    registered, queue, sessions, settings, clock
):
    before = counts(sessions, settings, clock)
    event_end = settings.content.events[0].ends_at

    clock.set(event_end + timedelta(days=30) - timedelta(minutes=1))
    retention_job(queue.services)
    assert ("甲一", "13800000001") in personal_fields(sessions)

    clock.set(event_end + timedelta(days=30))
    retention_job(queue.services)

    assert set(personal_fields(sessions)) == {(None, None)}
    with sessions() as session:
        assert all(row.erased_at == clock.now() for row in session.scalars(select(Registration)))
        assert all(row.company is None and row.title is None for row in session.scalars(select(Registration)))
    assert counts(sessions, settings, clock) == before
    assert before[:4] == (2, 1, 1, 1) and len(before[4]) == 2


def test_the_retention_period_comes_from_the_config(make_settings, engines, clock, sessions, registered):
    content = make_settings().content
    privacy = content.privacy.model_copy(update={"keep_days_after_event": 2})
    settings = make_settings(content=content.model_copy(update={"privacy": privacy}))
    queue = JobQueue(settings, engines(), clock)
    clock.set(settings.content.events[0].ends_at + timedelta(days=2))

    retention_job(queue.services)

    assert set(personal_fields(sessions)) == {(None, None)}


def test_purge_dry_run_says_what_it_would_erase_and_erases_nothing(registered, sessions, database_url, monkeypatch):
    monkeypatch.setenv("EVENTBOT_CONFIG", str(REPO_ROOT / "config.toml"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("EVENTBOT_NOW", "2023-04-26T17:00:00+08:00")

    dry = CliRunner().invoke(cli, ["privacy", "purge", "--dry-run"])

    assert dry.exit_code == 0, dry.output
    assert "meetup-10: personal fields of 4 registrations would be erased" in dry.output
    assert ("甲一", "13800000001") in personal_fields(sessions)

    done = CliRunner().invoke(cli, ["privacy", "purge"])
    assert "meetup-10: personal fields of 4 registrations erased" in done.output
    assert set(personal_fields(sessions)) == {(None, None)}
    assert "nothing to erase" in CliRunner().invoke(cli, ["privacy", "purge", "--dry-run"]).output


def test_purge_before_the_retention_period_erases_nothing(registered, sessions, database_url, monkeypatch):
    monkeypatch.setenv("EVENTBOT_CONFIG", str(REPO_ROOT / "config.toml"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("EVENTBOT_NOW", "2023-04-25T16:59:00+08:00")

    result = CliRunner().invoke(cli, ["privacy", "purge"])

    assert "nothing to erase: personal fields are kept 30 days after an event ends" in result.output
    assert ("甲一", "13800000001") in personal_fields(sessions)
