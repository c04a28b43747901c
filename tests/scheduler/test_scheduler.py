"""The scheduler facade: job ids, rebuilding from config, the persistent job store, and real firing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import organizer
from models.clock import ShiftedClock, SystemClock
from models.db import session_factory
from models.outbox import Campaign, Delivery
from models.registration import ONSITE, register
from models.reminder import SENT, SKIPPED, ReminderRun
from scheduler.jobs import RETENTION_JOB_ID, SWEEP_JOB_ID, JobQueue, sweep_job
from scheduler.reminders import Reminder, fire_due_reminders
from tests.polling import wait_until
from tests.registration_steps import settings_with_event

EVENT_ID = "meetup-10"
DAY_BEFORE = f"reminder:{EVENT_ID}:1d"
TWO_HOURS_BEFORE = f"reminder:{EVENT_ID}:2h"


@pytest.fixture
def queues() -> Callable[..., JobQueue]:
    """JobQueues that are shut down at the end of the test, whatever happened."""
    made: list[JobQueue] = []

    def make(settings, engine, clock) -> JobQueue:
        made.append(JobQueue(settings, engine, clock))
        return made[-1]

    yield make
    for queue in made:
        queue.shutdown()


def decision(sessions, reminder: Reminder) -> ReminderRun | None:
    with sessions() as session:
        return session.scalar(select(ReminderRun).where(ReminderRun.offset_text == reminder.offset_text))


def sign_up(sessions, openid, when) -> None:
    with sessions.begin() as session:
        register(session, event_id=EVENT_ID, openid=openid, answers={}, attendance=ONSITE, capacity=200, now=when)


def deliveries_per_follower(sessions) -> dict[str, int]:
    with sessions() as session:
        rows = session.execute(
            select(Delivery.openid, func.count())
            .join(Campaign, Campaign.id == Delivery.campaign_id)
            .where(Campaign.purpose == "reminder")
            .group_by(Delivery.openid)
        )
        return dict(rows.all())


def run_times(queue: JobQueue) -> dict[str, object]:
    return {job.id: job.next_run_time for job in queue.jobs()}


def test_reminder_jobs_are_named_for_event_and_offset_and_scheduling_again_replaces_them(
    settings, engines, queues, clock
):
    queue = queues(settings, engines(), clock)
    queue.start(paused=True)
    queue.rebuild(settings.content)
    queue.rebuild(settings.content)
    queue.schedule_reminders(settings.content.events[0])

    times = run_times(queue)
    assert sorted(times) == [DAY_BEFORE, TWO_HOURS_BEFORE, SWEEP_JOB_ID, RETENTION_JOB_ID]
    assert times[TWO_HOURS_BEFORE] - times[DAY_BEFORE] == timedelta(hours=22)
    assert all(moment.tzinfo is not None for moment in times.values())


def test_jobs_are_set_for_the_real_moment_the_clock_reads_the_reminders_time(settings, engines, queues, day_before):
    # EVENTBOT_NOW shifts the bot's clock; APScheduler runs on real time.
    queue = queues(settings, engines(), ShiftedClock(day_before.due_at - timedelta(hours=3), settings.tz))
    queue.start(paused=True)
    queue.rebuild(settings.content)

    delay = run_times(queue)[DAY_BEFORE] - SystemClock(settings.tz).now()
    assert timedelta(hours=3) - timedelta(minutes=1) < delay <= timedelta(hours=3)


def test_moving_the_event_in_config_moves_its_jobs_and_removed_offsets_lose_theirs(
    settings, make_settings, engines, queues, clock
):
    queue = queues(settings, engines(), clock)
    queue.start(paused=True)
    queue.rebuild(settings.content)
    before = run_times(queue)
    event = settings.content.events[0]
    moved = settings_with_event(
        make_settings,
        starts_at=event.starts_at + timedelta(days=7),
        ends_at=event.ends_at + timedelta(days=7),
        reminders=["1d"],
    )

    queue.rebuild(moved.content)

    after = run_times(queue)
    assert sorted(after) == [DAY_BEFORE, SWEEP_JOB_ID, RETENTION_JOB_ID]
    assert after[DAY_BEFORE] - before[DAY_BEFORE] == timedelta(days=7)


def test_a_restart_rebuilds_the_same_jobs_from_config_and_the_database(settings, engines, queues, clock):
    campaign_id = schedule(session_factory(engines()), clock.now() + timedelta(hours=5))
    first = queues(settings, engines(), clock)
    first.start(paused=True)
    first.rebuild(settings.content)
    expected = run_times(first)
    first.shutdown()

    second = queues(settings, engines(), clock)
    second.start(paused=True)
    second.rebuild(settings.content)
    rebuilt = run_times(second)

    assert f"broadcast:{campaign_id}" in expected
    assert rebuilt.keys() == expected.keys()
    # Jobs run on real time; the bot's (manual) clock stood still while real time went on between the two.
    assert all(abs(rebuilt[job_id] - expected[job_id]) < timedelta(seconds=5) for job_id in expected)


def test_cancel_removes_a_job(settings, engines, queues, clock):
    queue = queues(settings, engines(), clock)
    queue.start(paused=True)
    job_id = queue.schedule_broadcast(3, clock.now() + timedelta(hours=1))

    assert queue.cancel(job_id) is True
    assert queue.cancel(job_id) is False
    assert job_id not in run_times(queue)


def test_decided_reminders_get_no_job(settings, engines, queues, clock, day_before):
    engine = engines()
    clock.set(day_before.due_at)
    fire_due_reminders(session_factory(engine), settings, clock.now())
    queue = queues(settings, engine, clock)
    queue.start(paused=True)

    queue.rebuild(settings.content)

    assert DAY_BEFORE not in run_times(queue) and TWO_HOURS_BEFORE in run_times(queue)


def test_running_scheduler_fires_a_reminder_due_a_second_ahead(settings, engines, queues, clock, day_before):
    engine = engines()
    sessions = session_factory(engine)
    sign_up(sessions, "o-1", clock.now())
    # A clock that runs: it reads the reminder's time one real second from now.
    queue = queues(settings, engine, ShiftedClock(day_before.due_at - timedelta(seconds=1), settings.tz))

    queue.start()

    run = wait_until(lambda: decision(sessions, day_before), what="the reminder's decision")
    assert (run.state, run.recipients) == (SENT, 1)
    assert deliveries_per_follower(sessions) == {"o-1": 1}


@pytest.mark.parametrize(
    ("down_for", "state"),
    [(timedelta(minutes=10), SENT), (timedelta(hours=2), SKIPPED)],
    ids=["within-grace", "beyond-grace"],
)
def test_restart_after_a_reminders_time_decides_it_once(settings, engines, queues, clock, day_before, down_for, state):
    sessions = session_factory(engines())
    for openid in ("o-1", "o-2"):
        sign_up(sessions, openid, clock.now())
    scheduled_at = day_before.due_at - timedelta(hours=1)
    first = queues(settings, engines(), ShiftedClock(scheduled_at, settings.tz))
    first.start()
    first.shutdown()  # the process stops an hour before the reminder and comes back after it

    second = queues(settings, engines(), ShiftedClock(day_before.due_at + down_for, settings.tz))
    second.start()
    run = wait_until(lambda: decision(sessions, day_before), what="the reminder's decision")
    second.shutdown()
    third = queues(settings, engines(), ShiftedClock(day_before.due_at + down_for + timedelta(minutes=5), settings.tz))
    third.start(paused=True)
    third.rebuild(settings.content)

    assert run.state == state
    assert deliveries_per_follower(sessions) == ({"o-1": 1, "o-2": 1} if state == SENT else {})
    assert DAY_BEFORE not in run_times(third)


def schedule(sessions, send_at, audience="confirmed") -> int:
    with sessions.begin() as session:
        campaign = organizer.create_broadcast(
            session, event_id=EVENT_ID, audience=audience, text="明天见", now=send_at - timedelta(hours=1), send_at=send_at
        )
        return campaign.id


def broadcast_recipients(sessions, campaign_id) -> list[str]:
    with sessions() as session:
        return sorted(session.scalars(select(Delivery.openid).where(Delivery.campaign_id == campaign_id)))


def test_running_scheduler_starts_a_scheduled_broadcast_at_its_time_for_the_audience_then(
    settings, engines, queues, clock
):
    engine = engines()
    sessions = session_factory(engine)
    sign_up(sessions, "o-1", clock.now())
    send_at = clock.now() + timedelta(seconds=1)
    campaign_id = schedule(sessions, send_at)
    sign_up(sessions, "o-2", clock.now())  # registered after the broadcast was scheduled
    queue = queues(settings, engine, ShiftedClock(clock.now(), settings.tz))

    # Starting gives the broadcast its job; the sweep's first run is a minute away, so the job starts it.
    queue.start()

    recipients = wait_until(lambda: broadcast_recipients(sessions, campaign_id), what="the broadcast's deliveries")
    assert recipients == ["o-1", "o-2"]


def test_the_leader_gives_scheduled_broadcasts_their_jobs_and_drops_cancelled_ones(settings, engines, queues, clock):
    sessions = session_factory(engines())
    kept = schedule(sessions, clock.now() + timedelta(hours=2))
    cancelled = schedule(sessions, clock.now() + timedelta(hours=3))
    queue = queues(settings, engines(), clock)
    queue.start(paused=True)
    queue.rebuild(settings.content)
    assert {f"broadcast:{kept}", f"broadcast:{cancelled}"} <= run_times(queue).keys()

    with sessions.begin() as session:
        organizer.cancel_broadcast(session, cancelled)
    sweep_job(queue.services)

    times = run_times(queue)
    assert f"broadcast:{cancelled}" not in times
    assert times[f"broadcast:{kept}"] - SystemClock(settings.tz).now() > timedelta(hours=1, minutes=59)


def test_the_sweep_starts_a_broadcast_whose_job_never_ran(settings, engines, queues, clock):
    sessions = session_factory(engines())
    sign_up(sessions, "o-1", clock.now())
    campaign_id = schedule(sessions, clock.now() - timedelta(minutes=5))  # due while no scheduler ran
    queue = queues(settings, engines(), clock)
    queue.start(paused=True)

    sweep_job(queue.services)
    sweep_job(queue.services)

    assert broadcast_recipients(sessions, campaign_id) == ["o-1"]
    assert f"broadcast:{campaign_id}" not in run_times(queue)


def _explode() -> None:
    raise RuntimeError("boom")


def test_a_failing_job_goes_to_the_error_reporter(settings, engines, queues, clock, caplog):
    queue = queues(settings, engines(), clock)
    queue.start()
    caplog.set_level(logging.ERROR, logger="scheduler.jobs")

    # No verb schedules arbitrary code, so the test reaches for APScheduler itself.
    queue._scheduler.add_job(_explode, id="explodes")

    record = wait_until(
        lambda: next((r for r in caplog.records if r.name == "scheduler.jobs"), None), what="the error report"
    )
    assert record.getMessage() == "scheduled job explodes failed"
    assert "boom" in caplog.text
