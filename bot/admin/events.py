"""``/admin/api/events``: the configured events with their counts, check-in by code, and reminders."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from bot.admin.errors import service_errors
from bot.admin.registrations import CheckInOut, check_in_out
from bot.deps import NowDep, SessionDep, SettingsDep
from models import organizer, texts
from scheduler.reminders import REMINDER_TEMPLATE_KEY, reminder_reach, reminder_statuses

events_router = APIRouter(prefix="/events", tags=["events"])


class EventCounts(BaseModel):
    confirmed: int
    waitlisted: int
    cancelled: int
    checked_in: int
    registered_today: int


class OnsiteCounts(BaseModel):
    """Seats at the venue: confirmed registrants, walk-ins added at the door, seats left, the waitlist."""

    confirmed: int
    walk_ins: int
    capacity: int
    left: int
    waitlisted: int


class OnlineCounts(BaseModel):
    confirmed: int
    # Registered to watch online, yet checked in at the door.
    checked_in: int


class DayCount(BaseModel):
    date: date
    count: int


class ChannelCount(BaseModel):
    channel: str | None
    count: int


class EventOut(BaseModel):
    id: str
    name: str
    title: str
    starts_at: datetime
    ends_at: datetime
    venue: str
    capacity: int
    timezone: str
    current: bool
    # Takes place on the event clock's today, in the bot's timezone: the desk lists this event's people.
    today: bool
    onsite: OnsiteCounts
    online: OnlineCounts
    checked_in: int
    counts: EventCounts
    audiences: dict[str, int]
    registrations_per_day: list[DayCount]
    by_channel: list[ChannelCount]


class EventList(BaseModel):
    items: list[EventOut]
    total: int
    # The event clock's date in the bot's timezone (EVENTBOT_NOW moves it), which the desk names.
    today: date


def event_out(stats: organizer.EventStats, *, timezone: str, current: bool, today: bool) -> EventOut:
    event = stats.event
    return EventOut(
        id=event.id,
        name=event.name,
        title=event.title,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        venue=event.venue,
        capacity=event.capacity,
        timezone=timezone,
        current=current,
        today=today,
        onsite=OnsiteCounts(
            confirmed=stats.onsite,
            walk_ins=stats.walk_ins,
            capacity=event.capacity,
            left=stats.seats_left,
            waitlisted=stats.waitlisted,
        ),
        online=OnlineCounts(confirmed=stats.online, checked_in=stats.checked_in_online),
        checked_in=stats.checked_in,
        counts=EventCounts(
            confirmed=stats.confirmed,
            waitlisted=stats.waitlisted,
            cancelled=stats.cancelled,
            checked_in=stats.checked_in,
            registered_today=stats.registered_today,
        ),
        audiences=stats.audiences,
        registrations_per_day=[DayCount(date=day, count=count) for day, count in stats.per_day],
        by_channel=[ChannelCount(channel=channel, count=count) for channel, count in stats.by_channel],
    )


@events_router.get("", response_model=EventList)
def list_events(session: SessionDep, settings: SettingsDep, now: NowDep) -> EventList:
    """Every event in config.toml with counts, registrations per day and by channel, and audience sizes;
    which one the bot talks about (``current``) and which take place today."""
    current = settings.content.current_event(now)
    today = now.astimezone(settings.tz).date()
    items = [
        event_out(
            organizer.event_stats(session, settings.content, event, now),
            timezone=settings.content.bot.timezone,
            current=event.id == current.id,
            today=event.takes_place_on(today, settings.tz),
        )
        for event in settings.content.events
    ]
    return EventList(items=items, total=len(items), today=today)


class CodeIn(BaseModel):
    code: str = Field(min_length=1, max_length=16)


class MissedOut(BaseModel):
    """Someone a message did not reach: their name (None if they gave none) and why, in Chinese."""

    name: str | None
    reason: str


class DeliveryReportOut(BaseModel):
    """Delivered X of N: ``outcome`` pending | delivered | partly | none, ``summary`` in Chinese."""

    recipients: int
    delivered: int
    pending: int
    outcome: str
    summary: str
    missed: list[MissedOut]


def delivery_report_out(report: organizer.DeliveryReport) -> DeliveryReportOut:
    return DeliveryReportOut(
        recipients=report.recipients,
        delivered=report.delivered,
        pending=report.pending,
        outcome=report.outcome,
        summary=report.summary(),
        missed=[MissedOut(name=missed.name, reason=missed.reason) for missed in report.missed],
    )


class ReminderOut(BaseModel):
    offset: str
    due_at: datetime
    state: str
    reason: str | None
    recipients: int | None
    counts: dict[str, int]
    # Once sent: delivered X of N and who was not reached, why.
    report: DeliveryReportOut | None
    # Until decided: how many confirmed registrants each channel could reach now ("unreachable": none).
    reachable_now: dict[str, int] | None


class ReminderList(BaseModel):
    items: list[ReminderOut]
    total: int
    # In Chinese, when no template or 订阅通知 lets reminders reach anyone silent for 48 hours.
    warning: str | None


@events_router.post("/{event_id}/checkin", response_model=CheckInOut)
def check_in_by_code(event_id: str, body: CodeIn, session: SessionDep, settings: SettingsDep, now: NowDep) -> CheckInOut:
    """Check in whoever holds the code: 404 for an unknown event or code, 409 unless confirmed."""
    with service_errors():
        organizer.require_event(settings.content, event_id)
        return check_in_out(organizer.check_in_by_code(session, event_id, body.code, now))


@events_router.get("/{event_id}/reminders", response_model=ReminderList)
def list_reminders(event_id: str, session: SessionDep, settings: SettingsDep, now: NowDep) -> ReminderList:
    """Each configured reminder of the event: when it is due, its state (scheduled, sent, skipped), who it
    could reach now by channel until it is sent, then delivered X of N and who was missed, why."""
    with service_errors():
        organizer.require_event(settings.content, event_id)
    items = [
        ReminderOut(
            offset=status.reminder.offset_text,
            due_at=status.reminder.due_at,
            state=status.state,
            reason=status.run.reason if status.run else None,
            recipients=status.run.recipients if status.run else None,
            counts=organizer.outcome_counts(status.deliveries),
            report=delivery_report_out(status.report) if status.run and not status.run.reason else None,
            reachable_now=reminder_reach(session, settings, status.reminder, now) if status.run is None else None,
        )
        for status in reminder_statuses(session, settings.content, event_id)
    ]
    warning = None if settings.content.delivery.reaches_beyond_window(REMINDER_TEMPLATE_KEY) else texts.REACH_WARNING
    return ReminderList(items=items, total=len(items), warning=warning)
