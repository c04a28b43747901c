"""``/admin/api/events``: the configured events with their registration counts."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter
from pydantic import BaseModel

from bot import organizer
from bot.deps import NowDep, SessionDep, SettingsDep

events_router = APIRouter(prefix="/events", tags=["events"])


class EventCounts(BaseModel):
    confirmed: int
    waitlisted: int
    cancelled: int
    checked_in: int
    registered_today: int


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
    counts: EventCounts
    audiences: dict[str, int]
    registrations_per_day: list[DayCount]
    by_channel: list[ChannelCount]


class EventList(BaseModel):
    items: list[EventOut]
    total: int


def event_out(stats: organizer.EventStats, *, timezone: str, current: bool) -> EventOut:
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
    """Every event in config.toml with counts, registrations per day and by channel, and audience sizes."""
    current = settings.content.current_event(now)
    items = [
        event_out(
            organizer.event_stats(session, settings, event, now),
            timezone=settings.content.bot.timezone,
            current=event.id == current.id,
        )
        for event in settings.content.events
    ]
    return EventList(items=items, total=len(items))
