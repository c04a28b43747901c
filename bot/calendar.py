"""``/events/{event_id}.ics``: an event as an iCalendar file, linked from the registration reply.

Times are written in the bot's timezone with its VTIMEZONE, so calendars show the local start time
(14:00 in Asia/Shanghai) whatever the reader's own zone.
"""

from __future__ import annotations

from datetime import timedelta, timezone

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import Response
from icalendar import Calendar, Timezone
from icalendar import Event as CalendarEntry

from bot.deps import SettingsDep
from bot.settings import Settings
from handlers.registration import CALENDAR_PATH
from models.content import Event

calendar_router = APIRouter(tags=["calendar"])

ICS_MEDIA_TYPE = "text/calendar; charset=utf-8"


def event_calendar(event: Event, settings: Settings) -> bytes:
    """A VCALENDAR with one VEVENT for ``event``: local times, the venue, a stable UID."""
    tz = settings.tz
    start, end = event.starts_at.astimezone(tz), event.ends_at.astimezone(tz)
    calendar = Calendar()
    calendar.add("prodid", "-//eventbot//meetup calendar//ZH")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add_component(
        Timezone.from_tzinfo(tz, settings.content.bot.timezone, start.date() - timedelta(days=1), end.date())
    )
    entry = CalendarEntry()
    host = settings.content.bot.public_base_url.split("://")[-1].rstrip("/") or "eventbot"
    entry.add("uid", f"{event.id}@{host}")
    # DTSTAMP must be UTC; the start keeps the file identical for every download.
    entry.add("dtstamp", start.astimezone(timezone.utc))
    entry.add("dtstart", start)
    entry.add("dtend", end)
    entry.add("summary", f"{event.name}：{event.title}" if event.series else event.title)
    entry.add("location", event.venue)
    if event.summary:
        entry.add("description", event.summary)
    if event.map_url:
        entry.add("url", event.map_url)
    calendar.add_component(entry)
    return calendar.to_ical()


@calendar_router.get(CALENDAR_PATH, response_class=Response)
def event_ics(event_id: str, settings: SettingsDep) -> Response:
    """The event as a calendar file; 404 for an event not in config.toml."""
    event = settings.content.event_by_id(event_id)
    if event is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown event")
    return Response(
        event_calendar(event, settings),
        media_type=ICS_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{event.id}.ics"'},
    )
