"""Reminders before an event: when each is due, who gets it, and deciding each exactly once.

Everything here takes ``now`` from the caller (the app's clock), so it behaves the same when APScheduler
calls it on time, when a restarted process catches up, and in tests with a ManualClock.

A reminder is decided once, in one transaction: a ``ReminderRun`` row (unique per event, offset and due
time) records ``sent`` with the campaign handed to the outbox, or ``skipped`` with the reason. A second
attempt (another process, a retried job) finds the row, or fails on its unique key, and does nothing;
the outbox's own keys keep deliveries to one per (campaign, follower) even then.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from models import texts
from models.content import Content, Event, RemindersConfig, parse_offset
from models.deliveries import create_campaign
from models.organizer.reports import DeliveryReport, delivery_report
from models.outbox import Campaign, Delivery
from models.registration import CONFIRMED, ONLINE, ONSITE, WAITLISTED, Registration
from models.reminder import REMINDER_TEMPLATE_KEY, SENT, SKIPPED, ReminderRun
from scheduler.channels import reachable_now
from scheduler.settings import SchedulerSettings

log = logging.getLogger(__name__)

REMINDER_PURPOSE = "reminder"
# Shown in the campaign's own text, which lists no one's code: each delivery carries its own.
PERSONAL_CODE_PLACEHOLDER = "（每人不同）"
# The offset of the message at the start time itself: the stream link, to online registrants only.
AT_START = "start"


@dataclass(frozen=True)
class Reminder:
    """One configured reminder of one event: the offset as written in config.toml (or ``AT_START``) and
    when it is due."""

    event: Event
    offset_text: str

    @property
    def at_start(self) -> bool:
        return self.offset_text == AT_START

    @property
    def due_at(self) -> datetime:
        return self.event.starts_at if self.at_start else self.event.starts_at - parse_offset(self.offset_text)

    @property
    def job_id(self) -> str:
        """The scheduler's id for this reminder: scheduling it again replaces the job."""
        return f"reminder:{self.event.id}:{self.offset_text}"

    def campaign_key(self, audience: str) -> str:
        due = self.due_at.astimezone(timezone.utc).isoformat()
        return f"reminder:{self.event.id}:{self.offset_text}:{due}:{audience}"


def reminders_of(event: Event, config: RemindersConfig) -> list[Reminder]:
    """The event's reminders in the order they fall due: its offsets, then the message at the start time
    when ``online_at_start`` is on and the event has a stream link to send."""
    offsets = list(dict.fromkeys(event.reminders))
    if config.online_at_start and event.stream_url:
        offsets.append(AT_START)
    return sorted((Reminder(event, offset) for offset in offsets), key=lambda r: r.due_at)


def all_reminders(content: Content) -> list[Reminder]:
    return [reminder for event in content.events for reminder in reminders_of(event, content.reminders)]


def find_reminder(content: Content, event_id: str, offset_text: str) -> Reminder | None:
    """The reminder as config.toml now defines it; None when the event or offset is gone."""
    event = content.event_by_id(event_id)
    if event is None:
        return None
    return next((r for r in reminders_of(event, content.reminders) if r.offset_text == offset_text), None)


def decision_of(session: Session, reminder: Reminder) -> ReminderRun | None:
    """The recorded decision on this reminder at its current due time, if it was decided."""
    return session.scalar(
        select(ReminderRun).where(
            ReminderRun.event_id == reminder.event.id,
            ReminderRun.offset_text == reminder.offset_text,
            ReminderRun.due_at == reminder.due_at,
        )
    )


def skip_reason(reminder: Reminder, now: datetime, grace) -> str | None:
    """Why a due reminder must not be sent at ``now`` (event started, or ended for the message at the
    start, or later than the grace window)."""
    if now >= (reminder.event.ends_at if reminder.at_start else reminder.event.starts_at):
        return texts.skipped_event_over(now, ended=reminder.at_start)
    late = now - reminder.due_at
    if late > grace:
        return texts.skipped_late(_minutes(late), _minutes(grace))
    return None


def _minutes(delta) -> int:
    return int(delta.total_seconds() // 60)


def _registrants_by(session: Session, reminder: Reminder, status: str) -> list[Registration]:
    """Registrants of ``status`` who were already in that state at the reminder's time.

    A confirmed person counts from ``confirmed_at`` (a late registrant, or one promoted after the due time,
    never gets this reminder); a waitlisted one from when they registered.
    """
    since = Registration.confirmed_at if status == CONFIRMED else Registration.created_at
    return list(
        session.scalars(
            select(Registration)
            .where(Registration.event_id == reminder.event.id, Registration.status == status, since <= reminder.due_at)
            .order_by(Registration.id)
        )
    )


def _template(config: RemindersConfig, kind: str) -> str:
    return getattr(config, kind) or texts.DEFAULT_REMINDER_TEMPLATES[kind]


def _wording(reminder: Reminder, attendance: str) -> str:
    """Which ``[reminders]`` template a registrant attending this way gets for ``reminder``."""
    if reminder.at_start:
        return "online_start"
    return "online" if attendance == ONLINE else "onsite"


def _enqueue(session: Session, reminder: Reminder, settings: SchedulerSettings, now: datetime) -> int:
    """Hand the reminder to the outbox: one campaign for the confirmed, one for the waitlist if enabled."""
    config, event, tz = settings.content.reminders, reminder.event, settings.tz
    confirmed = _registrants_by(session, reminder, CONFIRMED)
    if reminder.at_start:  # the stream link: on-site people are on their way, with their code
        confirmed = [registration for registration in confirmed if registration.attendance == ONLINE]
    personal = {
        registration.openid: texts.reminder(
            _template(config, _wording(reminder, registration.attendance)),
            event,
            now,
            tz,
            registration.checkin_code,
        )
        for registration in confirmed
    }
    recipients = len(personal)
    if personal:
        create_campaign(
            session,
            openids=personal,
            text=texts.reminder(_template(config, _wording(reminder, ONSITE)), event, now, tz, PERSONAL_CODE_PLACEHOLDER),
            texts=personal,
            purpose=REMINDER_PURPOSE,
            dedup_key=reminder.campaign_key(CONFIRMED),
            event_id=event.id,
            audience=CONFIRMED,
            template_key=REMINDER_TEMPLATE_KEY,
        )
    if config.remind_waitlisted and not reminder.at_start:
        waiting = [registration.openid for registration in _registrants_by(session, reminder, WAITLISTED)]
        if waiting:
            create_campaign(
                session,
                openids=waiting,
                text=texts.reminder(_template(config, "waitlisted"), event, now, tz),
                purpose=REMINDER_PURPOSE,
                dedup_key=reminder.campaign_key(WAITLISTED),
                event_id=event.id,
                audience=WAITLISTED,
            )
            recipients += len(waiting)
    return recipients


def decide_reminder(
    sessions: sessionmaker[Session], settings: SchedulerSettings, reminder: Reminder, now: datetime
) -> ReminderRun | None:
    """Send (via the outbox) or skip one due reminder, once; the existing decision if already made.

    None when the reminder is not due yet at ``now``.
    """
    if now < reminder.due_at:
        return None
    try:
        with sessions.begin() as session:
            existing = decision_of(session, reminder)
            if existing is not None:
                return existing
            # The row first: a concurrent decider (PostgreSQL) waits on its unique key and then fails,
            # before either has created a campaign.
            run = ReminderRun(
                event_id=reminder.event.id,
                offset_text=reminder.offset_text,
                due_at=reminder.due_at,
                state=SKIPPED,
                recipients=0,
                decided_at=now,
            )
            session.add(run)
            session.flush()
            run.reason = skip_reason(reminder, now, settings.content.reminders.grace_period)
            if run.reason is None:
                run.state = SENT
                run.recipients = _enqueue(session, reminder, settings, now)
    except IntegrityError:
        with sessions() as session:
            return decision_of(session, reminder)
    log.info(
        "reminder %s %s: %s",
        reminder.job_id,
        run.state,
        run.reason or f"{run.recipients} recipients",
    )
    return run


def run_reminder(
    sessions: sessionmaker[Session], settings: SchedulerSettings, event_id: str, offset_text: str, now: datetime
) -> ReminderRun | None:
    """Decide the reminder ``(event_id, offset_text)`` as config.toml now defines it, if it is due at ``now``."""
    reminder = find_reminder(settings.content, event_id, offset_text)
    if reminder is None:
        log.warning("reminder %s/%s is no longer in the config; nothing to do", event_id, offset_text)
        return None
    return decide_reminder(sessions, settings, reminder, now)


def fire_due_reminders(sessions: sessionmaker[Session], settings: SchedulerSettings, now: datetime) -> list[ReminderRun]:
    """Decide every configured reminder that is due at ``now`` and not decided yet; the new decisions."""
    decided = []
    for reminder in all_reminders(settings.content):
        if reminder.due_at > now:
            continue
        with sessions() as session:
            if decision_of(session, reminder) is not None:
                continue
        run = decide_reminder(sessions, settings, reminder, now)
        if run is not None:
            decided.append(run)
    return decided


@dataclass(frozen=True)
class ReminderStatus:
    """A configured reminder and what became of it, for ``eventbot reminders`` and the admin API."""

    reminder: Reminder
    run: ReminderRun | None
    # Deliveries of the reminder's campaigns by outbox status ({"sent": 12, "pending": 3 …}).
    deliveries: dict[str, int]
    # Delivered X of N, and who was not reached and why.
    report: DeliveryReport

    @property
    def state(self) -> str:
        return self.run.state if self.run else "scheduled"


def reminder_statuses(session: Session, content: Content, event_id: str | None = None) -> list[ReminderStatus]:
    """Each configured reminder (of one event, or all) with its decision and delivery counts."""
    statuses = []
    for reminder in all_reminders(content):
        if event_id is not None and reminder.event.id != event_id:
            continue
        keys = [reminder.campaign_key(CONFIRMED), reminder.campaign_key(WAITLISTED)]
        campaign_ids = session.scalars(select(Campaign.id).where(Campaign.dedup_key.in_(keys))).all()
        counts = session.execute(
            select(Delivery.status, func.count()).where(Delivery.campaign_id.in_(campaign_ids)).group_by(Delivery.status)
        )
        statuses.append(
            ReminderStatus(
                reminder,
                decision_of(session, reminder),
                dict(counts.all()),
                delivery_report(session, campaign_ids, reminder.event.id),
            )
        )
    return statuses


def reminder_reach(session: Session, settings: SchedulerSettings, reminder: Reminder, now: datetime) -> dict[str, int]:
    """How many of those the reminder is for (the event's confirmed registrants; online ones at the start)
    it could reach if sent at ``now``, by channel."""
    event = reminder.event
    audience = select(Registration.openid).where(Registration.event_id == event.id, Registration.status == CONFIRMED)
    if reminder.at_start:
        audience = audience.where(Registration.attendance == ONLINE)
    openids = session.scalars(audience)
    preview = Campaign(purpose=REMINDER_PURPOSE, event_id=event.id, template_key=REMINDER_TEMPLATE_KEY, text="")
    return reachable_now(session, settings, openids, preview, now)
