"""The scheduler facade: APScheduler 3 behind a few verbs, in the style of python-telegram-bot's JobQueue.

``schedule_reminders(event)``, ``schedule_broadcast(campaign_id, send_at)`` and ``cancel(job_id)``; job
ids say what a job is for (``reminder:<event>:<offset>``, ``broadcast:<id>``), so scheduling again
replaces the job instead of adding a second one.

Jobs live in memory: what they stand for is in config.toml and the database, so the leader rebuilds them
when it starts (reminders from config.toml and the reminder runs, broadcasts from their plans) and the
sweep keeps them in step. Each job function receives the ``JobServices`` it works with as its first
argument: nothing is looked up in a module global.

Jobs only wake work up. Exactly-once comes from the database: a reminder is decided once
(``scheduler.reminders``), a scheduled broadcast is started once (``bot.organizer``) and the outbox
delivers once per (campaign, follower).

Scheduled broadcasts are created by any process (the admin API, the CLI) as database rows only; the
leader gives each one a job for its exact time when it starts and at every sweep, and drops the jobs of
broadcasts cancelled meanwhile. The sweep also starts any broadcast already due, so one whose job was
never made (created less than a sweep before its time) or missed (every process down) still goes out,
within the grace rule of ``models.organizer.BROADCAST_GRACE``.

Times: APScheduler runs on the real time, the bot on its clock (which ``EVENTBOT_NOW`` may shift), so a
job is set for the real moment at which the bot's clock will read the reminder's time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from models.clock import Clock, SystemClock
from models.content import Content, Event
from models.db import session_factory
from models.organizer import (
    queue_daily_digest,
    report_finished_broadcasts,
    scheduled_broadcasts,
    start_due_broadcasts,
    start_scheduled_broadcast,
)
from models.privacy import purge_expired
from models.retention import prune_operational_state
from scheduler.reminders import (
    decision_of,
    fire_due_reminders,
    reminders_of,
    run_reminder,
)
from scheduler.settings import SchedulerSettings

log = logging.getLogger(__name__)

REMINDER_JOB_PREFIX = "reminder:"
BROADCAST_JOB_PREFIX = "broadcast:"
SWEEP_JOB_ID = "reminders:sweep"
RETENTION_JOB_ID = "retention"
# Often, so each run deletes little: the forms scan is over a table that retention itself keeps small.
RETENTION_INTERVAL = timedelta(minutes=1)
# The sweep catches reminders whose job failed, and bounds how long the scheduler sleeps: jobs that
# other processes plan (a broadcast scheduled through the admin API, a database row) get their job at its wake-up.
SWEEP_INTERVAL = timedelta(minutes=1)
JOB_DEFAULTS = {
    # A job that was due while the process was down runs once at start-up however late: whether a late
    # reminder is still sent is decided by the grace rules in ``scheduler.reminders``, not by APScheduler.
    "misfire_grace_time": None,
    "coalesce": True,
    "max_instances": 1,
}


@dataclass(frozen=True)
class JobServices:
    """What job functions work with: the settings, the database, the bot's clock and the queue itself."""

    settings: SchedulerSettings
    sessions: sessionmaker[Session]
    clock: Clock
    queue: JobQueue


def reminder_job(services: JobServices, event_id: str, offset_text: str) -> None:
    """Scheduled job: decide one reminder at the bot's current time."""
    run_reminder(services.sessions, services.settings, event_id, offset_text, services.clock.now())


def sweep_job(services: JobServices) -> None:
    """Scheduled job: decide any reminder that is due and undecided (its job failed or never ran), start
    any scheduled broadcast that is due, give the waiting ones their jobs, tell admins who broadcast
    from the chat how their finished broadcasts went, and queue the organizers' daily digest once its time
    has come."""
    fire_due_reminders(services.sessions, services.settings, services.clock.now())
    with services.sessions.begin() as session:
        start_due_broadcasts(session, services.clock.now())
    services.queue.schedule_broadcasts()
    with services.sessions.begin() as session:
        report_finished_broadcasts(session, services.clock.now())
    with services.sessions.begin() as session:
        queue_daily_digest(session, services.settings.content, services.settings.admin_openids, services.clock.now())


def retention_job(services: JobServices) -> None:
    """Scheduled job: delete the operational state nothing needs any more (expired forms and kept answers,
    old ledger rows, the text of delivered late replies), and erase the personal fields of events past
    ``[privacy] keep_days_after_event`` (their counts stay)."""
    pruned = prune_operational_state(services.sessions, services.clock.now())
    if pruned.form_states or pruned.inbound_messages or pruned.late_replies or pruned.kept_answers:
        log.info(
            "pruned %d form states, %d ledger rows and %d kept answers, forgot %d delivered late replies",
            pruned.form_states, pruned.inbound_messages, pruned.kept_answers, pruned.late_replies,
        )
    with services.sessions.begin() as session:
        purges = purge_expired(session, services.settings.content, services.clock.now())
    for purge in purges:
        log.info(
            "erased the personal fields of %d registrations of %s and %d messages to organizers naming them",
            purge.registrations, purge.event_id, purge.organizer_messages,
        )


def broadcast_job(services: JobServices, campaign_id: int) -> None:
    """Scheduled job: start the scheduled broadcast at its time, for its audience as it is now."""
    with services.sessions.begin() as session:
        start_scheduled_broadcast(session, campaign_id, services.clock.now())


def report_job_error(event: JobExecutionEvent) -> None:
    """The one error reporter: every failed job is logged with its id and traceback."""
    log.error(
        "scheduled job %s failed",
        event.job_id,
        exc_info=(type(event.exception), event.exception, event.exception.__traceback__),
    )


class JobQueue:
    """The bot's scheduler. ``start()`` it in the one leader process; ``start(paused=True)`` elsewhere to
    add or cancel jobs without running them."""

    def __init__(self, settings: SchedulerSettings, engine: Engine, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        # How far the bot's clock runs ahead of real time: fixed for a shifted clock, so measured once.
        self._clock_ahead_by = clock.now() - SystemClock(settings.tz).now()
        self._sessions = session_factory(engine)
        self.services = JobServices(settings, self._sessions, clock, self)
        self._scheduler = BackgroundScheduler(job_defaults=JOB_DEFAULTS, timezone=settings.tz)
        self._scheduler.add_listener(report_job_error, EVENT_JOB_ERROR)

    @property
    def running(self) -> bool:
        return self._scheduler.running

    def start(self, *, paused: bool = False) -> None:
        """Start the scheduler; unless paused, rebuild reminder jobs from config.toml and run jobs."""
        self._scheduler.start(paused=paused)
        if not paused:
            self.rebuild(self.settings.content)

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop running jobs; the next start rebuilds them from config.toml and the database."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)

    def rebuild(self, content: Content) -> None:
        """Make the reminder jobs match ``content`` (moved times move jobs, removed reminders lose theirs)
        and the broadcast jobs match the scheduled broadcasts."""
        wanted: set[str] = set()
        for event in content.events:
            wanted.update(self.schedule_reminders(event))
        for job in self.jobs():
            if job.id.startswith(REMINDER_JOB_PREFIX) and job.id not in wanted:
                job.remove()
        self.schedule_broadcasts()
        self._scheduler.add_job(
            sweep_job, "interval", seconds=SWEEP_INTERVAL.total_seconds(), args=[self.services], id=SWEEP_JOB_ID,
            replace_existing=True,
        )
        self._scheduler.add_job(
            retention_job, "interval", seconds=RETENTION_INTERVAL.total_seconds(), args=[self.services],
            id=RETENTION_JOB_ID, replace_existing=True,
        )

    def schedule_reminders(self, event: Event) -> list[str]:
        """(Re)schedule the event's undecided reminders; the ids of the jobs now scheduled."""
        with self._sessions() as session:
            reminders = reminders_of(event, self.settings.content.reminders)
            undecided = [reminder for reminder in reminders if decision_of(session, reminder) is None]
        for reminder in reminders:
            if reminder not in undecided:
                self.cancel(reminder.job_id)
        for reminder in undecided:
            self._scheduler.add_job(
                reminder_job,
                "date",
                run_date=self._real_time(reminder.due_at),
                args=[self.services, event.id, reminder.offset_text],
                id=reminder.job_id,
                name=f"{event.id} reminder {reminder.offset_text} before",
                replace_existing=True,
            )
        return [reminder.job_id for reminder in undecided]

    def schedule_broadcast(self, campaign_id: int, send_at: datetime) -> str:
        """Start the scheduled broadcast ``campaign_id`` at ``send_at``; the job's id."""
        job_id = f"{BROADCAST_JOB_PREFIX}{campaign_id}"
        self._scheduler.add_job(
            broadcast_job,
            "date",
            run_date=self._real_time(send_at),
            args=[self.services, campaign_id],
            id=job_id,
            name=f"broadcast {campaign_id}",
            replace_existing=True,
        )
        return job_id

    def schedule_broadcasts(self) -> list[str]:
        """Give each scheduled broadcast without a job its job, and drop the jobs of broadcasts no longer
        waiting (cancelled, or started by the sweep); the ids of the broadcast jobs now scheduled."""
        with self._sessions() as session:
            waiting = scheduled_broadcasts(session)
        wanted = {f"{BROADCAST_JOB_PREFIX}{campaign_id}": campaign_id for campaign_id in waiting}
        existing = {job.id for job in self.jobs() if job.id.startswith(BROADCAST_JOB_PREFIX)}
        for job_id in existing - wanted.keys():
            self.cancel(job_id)
        for job_id in wanted.keys() - existing:
            self.schedule_broadcast(wanted[job_id], waiting[wanted[job_id]])
        return sorted(wanted)

    def cancel(self, job_id: str) -> bool:
        """Remove a job; False when there was none."""
        try:
            self._scheduler.remove_job(job_id)
        except JobLookupError:
            return False
        return True

    def jobs(self) -> list[Job]:
        return self._scheduler.get_jobs()

    def _real_time(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise ValueError("scheduling needs an aware datetime")
        return (moment - self._clock_ahead_by).astimezone(self.settings.tz)
