"""Retention of personal data: the scheduled job erases personal fields of ended events after [privacy]
keep_days_after_event and keeps the counts; the purge CLI and its dry run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli import app as cli
from bot.devtools.simulator import WeChatSimulator
from models import Campaign, Delivery, Registration, organizer
from models.organizer.notices import REGISTRATION_NOTICE_PURPOSE, queue_daily_digest
from models.registration import ONLINE
from scheduler.jobs import JobQueue, retention_job
from scheduler.sender import build_sender
from tests.conftest import REPO_ROOT, TOKEN
from tests.organizer_factories import add_registration
from tests.personal_data import holding
from tests.registration_steps import register_via_chat

EVENT_ENDS = "2023-03-26T17:00:00+08:00"
ORGANIZER = "o-organizer"


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


def test_the_job_also_erases_the_messages_to_organizers_that_name_registrants(
    make_app, outbound_settings, fake_wechat, engines, clock
):
    content = outbound_settings.content
    notices = content.organizer_notices.model_copy(update={"on_registration": True, "digest_at": "09:00"})
    settings = outbound_settings.model_copy(
        update={"content": content.model_copy(update={"organizer_notices": notices}), "admin_openids_raw": ORGANIZER}
    )
    app = make_app(settings)
    sessions = app.state.services.sessions
    fake_wechat.tell_follower(ORGANIZER, last_interaction_at=clock.now())
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        wechat.send_text(ORGANIZER, "管理")
        register_via_chat(wechat, "o-a", name="甲一", company="甲公司")
        app.state.services.activity.flush()
        build_sender(settings, sessions, clock).run_until_idle()  # the notice about 甲一 is sent
        register_via_chat(wechat, "o-b", name="乙二", company="乙公司")  # the one about 乙二 waits
    with sessions.begin() as session:
        queue_daily_digest(session, settings.content, [ORGANIZER], clock.now())  # naming both, waits
    with sessions() as session:  # two notices and the digest
        assert len(session.scalars(select(Campaign.text).where(Campaign.text.contains("乙二"))).all()) == 2

    clock.set(settings.content.events[0].ends_at + timedelta(days=30))
    retention_job(JobQueue(settings, engines(), clock).services)

    assert holding(app, "甲一", "甲公司", "乙二", "乙公司") == []
    with sessions() as session:
        kept = session.execute(select(Campaign.purpose, Campaign.text, Delivery.status).join(Delivery)).all()
    assert [tuple(row) for row in kept] == [(REGISTRATION_NOTICE_PURPOSE, "", "sent")]  # its outcome, not its words


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
