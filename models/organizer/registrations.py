"""Organizers' operations on registrations: statistics, search, check-in, and who a broadcast addresses."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Select, false, func, or_, select
from sqlalchemy.orm import Session

from models.content import Content, Event
from models.follower import Follower
from models.registration import (
    CANCELLED,
    CONFIRMED,
    WAITLISTED,
    Registration,
    check_in,
    registration_by_code,
)

STATUSES = (CONFIRMED, WAITLISTED, CANCELLED)
# Who a broadcast can address. "confirmed" includes people already checked in; "all_registrants" is
# everyone still registered (confirmed or waitlisted): a cancelled registration asked to hear no more.
AUDIENCES = ("confirmed", "waitlisted", "checked_in", "not_checked_in", "all_registrants")
# The fewest digits a phone-suffix search needs, so "1" does not match half the list.
PHONE_SUFFIX_MIN_DIGITS = 4


class NotFound(LookupError):
    """An event, registration or broadcast that does not exist; the message says which."""


class NotConfirmed(Exception):
    """Check-in refused: the registration is waitlisted or cancelled."""

    def __init__(self, registration: Registration) -> None:
        super().__init__(f"registration {registration.id} is {registration.status}, not confirmed")
        self.registration = registration


def require_event(content: Content, event_id: str) -> Event:
    """The configured event ``event_id``; NotFound when config.toml has no such event."""
    event = content.event_by_id(event_id)
    if event is None:
        raise NotFound(f"unknown event {event_id!r}")
    return event


@dataclass(frozen=True)
class EventStats:
    """An event's registrations counted every way the organizer looks at them."""

    event: Event
    confirmed: int = 0
    waitlisted: int = 0
    cancelled: int = 0
    checked_in: int = 0
    registered_today: int = 0
    per_day: list[tuple[date, int]] = field(default_factory=list)
    by_channel: list[tuple[str | None, int]] = field(default_factory=list)

    @property
    def audiences(self) -> dict[str, int]:
        """How many followers each broadcast audience reaches right now."""
        return {
            "confirmed": self.confirmed,
            "waitlisted": self.waitlisted,
            "checked_in": self.checked_in,
            "not_checked_in": self.confirmed - self.checked_in,
            "all_registrants": self.confirmed + self.waitlisted,
        }


def event_stats(session: Session, content: Content, event: Event, now: datetime) -> EventStats:
    """Counts by status, check-ins, registrations per day (bot timezone) and by QR channel."""
    rows = session.execute(
        select(Registration.status, Registration.checked_in_at, Registration.created_at, Follower.channel)
        .outerjoin(Follower, Follower.openid == Registration.openid)
        .where(Registration.event_id == event.id)
    ).all()
    # An event has hundreds of registrations, not millions: counting in Python keeps the day boundaries in
    # the bot's timezone on both backends.
    statuses = Counter(row.status for row in rows)
    days = Counter(row.created_at.astimezone(content.tz).date() for row in rows)
    channels = Counter(row.channel for row in rows if row.status != CANCELLED)
    return EventStats(
        event=event,
        confirmed=statuses[CONFIRMED],
        waitlisted=statuses[WAITLISTED],
        cancelled=statuses[CANCELLED],
        checked_in=sum(1 for row in rows if row.status == CONFIRMED and row.checked_in_at is not None),
        registered_today=days[now.astimezone(content.tz).date()],
        per_day=sorted(days.items()),
        by_channel=sorted(channels.items(), key=lambda item: (-item[1], item[0] or "")),
    )


def _matching(event_id: str, *, q: str = "", status: str | None = None, checked_in: bool | None = None) -> Select:
    query = (
        select(Registration, Follower.channel)
        .outerjoin(Follower, Follower.openid == Registration.openid)
        .where(Registration.event_id == event_id)
    )
    if status is not None:
        query = query.where(Registration.status == status)
    if checked_in is not None:
        arrived = Registration.checked_in_at.is_not(None)
        query = query.where(arrived if checked_in else ~arrived)
    q = q.strip()
    if q:
        digits = q.removeprefix("+86").replace(" ", "").replace("-", "")
        phone_suffix = (
            Registration.phone.endswith(digits, autoescape=True)
            if digits.isdigit() and len(digits) >= PHONE_SUFFIX_MIN_DIGITS
            else false()
        )
        query = query.where(
            or_(
                Registration.name.icontains(q, autoescape=True),
                Registration.company.icontains(q, autoescape=True),
                func.upper(Registration.checkin_code) == q.upper(),
                phone_suffix,
            )
        )
    return query


def search_registrations(
    session: Session,
    event_id: str,
    *,
    q: str = "",
    status: str | None = None,
    checked_in: bool | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[tuple[Registration, str | None]], int]:
    """Registrations (with the follower's channel) matching the filters, oldest first, and their total.

    ``q`` finds a name or company containing it, an exact check-in code, or a phone ending in its digits.
    """
    query = _matching(event_id, q=q, status=status, checked_in=checked_in)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    page = session.execute(query.order_by(Registration.id).offset(offset).limit(limit)).all()
    return [(registration, channel) for registration, channel in page], total


@dataclass(frozen=True)
class CheckIn:
    """A check-in done (or found already done) by an organizer."""

    registration: Registration
    channel: str | None
    already: bool


def _check_in(session: Session, registration: Registration | None, now: datetime, what: str) -> CheckIn:
    if registration is None:
        raise NotFound(what)
    already = registration.checked_in_at is not None
    if not check_in(session, registration, now):
        raise NotConfirmed(registration)
    follower = session.get(Follower, registration.openid)
    return CheckIn(registration, follower.channel if follower else None, already)


def check_in_by_id(session: Session, event_id: str, registration_id: int, now: datetime) -> CheckIn:
    """Check in registration ``registration_id`` of the event; NotFound, or NotConfirmed unless confirmed."""
    registration = session.get(Registration, registration_id)
    if registration is not None and registration.event_id != event_id:
        registration = None
    return _check_in(session, registration, now, f"no registration {registration_id} for event {event_id!r}")


def check_in_by_code(session: Session, event_id: str, code: str, now: datetime) -> CheckIn:
    """Check in whoever holds ``code`` (any case) for the event; NotFound, or NotConfirmed unless confirmed."""
    registration = registration_by_code(session, event_id, code)
    missing = f"no registration with code {code.strip().upper()!r} for event {event_id!r}"
    return _check_in(session, registration, now, missing)


def check_audience(audience: str) -> None:
    if audience not in AUDIENCES:
        raise ValueError(f"unknown audience {audience!r}: use one of {', '.join(AUDIENCES)}")


def audience_openids(session: Session, event_id: str, audience: str) -> list[str]:
    """The followers a broadcast to ``audience`` reaches, in registration order."""
    check_audience(audience)
    conditions = {
        "confirmed": [Registration.status == CONFIRMED],
        "waitlisted": [Registration.status == WAITLISTED],
        "checked_in": [Registration.status == CONFIRMED, Registration.checked_in_at.is_not(None)],
        "not_checked_in": [Registration.status == CONFIRMED, Registration.checked_in_at.is_(None)],
        "all_registrants": [Registration.status != CANCELLED],
    }[audience]
    return list(
        session.scalars(
            select(Registration.openid).where(Registration.event_id == event_id, *conditions).order_by(Registration.id)
        )
    )
