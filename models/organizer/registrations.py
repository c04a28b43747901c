"""Organizers' operations on registrations: statistics, search, check-in, and who a broadcast addresses."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Select, exists, false, func, or_, select
from sqlalchemy.orm import Session, aliased

from models import texts
from models.content import Content, Event
from models.follower import Follower
from models.registration import (
    CANCELLED,
    CONFIRMED,
    ONLINE,
    ONSITE,
    WAITLISTED,
    Registration,
    SeatChange,
    add_walk_in,
    cancel,
    check_in,
    registration_by_code,
    undo_check_in,
)

STATUSES = (CONFIRMED, WAITLISTED, CANCELLED)
# Who a broadcast can address. "confirmed" includes people already checked in; "all_registrants" is
# everyone still registered (confirmed or waitlisted): a cancelled registration asked to hear no more.
# "onsite" and "online" are the confirmed who come to the venue and those who watch the livestream.
# Walk-ins added at the door have no WeChat follower and are in none of them.
AUDIENCES = ("confirmed", "onsite", "online", "waitlisted", "checked_in", "not_checked_in", "all_registrants")
# The fewest digits a phone-suffix search needs, so "1" does not match half the list.
PHONE_SUFFIX_MIN_DIGITS = 4


class NotFound(LookupError):
    """An event, registration or broadcast that does not exist; the message says which."""


class NotConfirmed(Exception):
    """Check-in refused: the registration is waitlisted or cancelled."""

    def __init__(self, registration: Registration) -> None:
        super().__init__(texts.admin_checkin_refused(registration))
        self.registration = registration


class RoomFull(Exception):
    """A walk-in refused: every seat on site is taken."""


def require_event(content: Content, event_id: str) -> Event:
    """The configured event ``event_id``; NotFound when config.toml has no such event."""
    event = content.event_by_id(event_id)
    if event is None:
        raise NotFound(texts.organizer_unknown_event(event_id))
    return event


@dataclass(frozen=True)
class EventStats:
    """An event's registrations counted every way the organizer looks at them.

    ``onsite`` and ``online`` count confirmed registrations by attendance; walk-ins (added at the door)
    take seats but are counted apart, and no broadcast reaches them.
    """

    event: Event
    onsite: int = 0
    online: int = 0
    walk_ins: int = 0
    waitlisted: int = 0
    cancelled: int = 0
    checked_in: int = 0
    # Of ``checked_in``, those who registered to watch online and came anyway.
    checked_in_online: int = 0
    registered_today: int = 0
    per_day: list[tuple[date, int]] = field(default_factory=list)
    by_channel: list[tuple[str | None, int]] = field(default_factory=list)

    @property
    def confirmed(self) -> int:
        """Confirmed registrants, on site and online (walk-ins apart)."""
        return self.onsite + self.online

    @property
    def seats_left(self) -> int:
        return max(self.event.capacity - self.onsite - self.walk_ins, 0)

    @property
    def audiences(self) -> dict[str, int]:
        """How many followers each broadcast audience reaches right now."""
        checked_in_registrants = self.checked_in - self.walk_ins
        return {
            "confirmed": self.confirmed,
            "onsite": self.onsite,
            "online": self.online,
            "waitlisted": self.waitlisted,
            "checked_in": checked_in_registrants,
            "not_checked_in": self.confirmed - checked_in_registrants,
            "all_registrants": self.confirmed + self.waitlisted,
        }


def event_stats(session: Session, content: Content, event: Event, now: datetime) -> EventStats:
    """Counts by status and attendance, check-ins, registrations per day (bot timezone) and by QR channel."""
    rows = session.execute(
        select(
            Registration.status,
            Registration.attendance,
            Registration.walk_in,
            Registration.checked_in_at,
            Registration.created_at,
            Follower.channel,
        )
        .outerjoin(Follower, Follower.openid == Registration.openid)
        .where(Registration.event_id == event.id)
    ).all()
    # An event has hundreds of registrations, not millions: counting in Python keeps the day boundaries in
    # the bot's timezone on both backends.
    statuses = Counter(row.status for row in rows)
    confirmed = Counter(
        "walk_in" if row.walk_in else row.attendance for row in rows if row.status == CONFIRMED
    )
    arrived = [row for row in rows if row.status == CONFIRMED and row.checked_in_at is not None]
    days = Counter(row.created_at.astimezone(content.tz).date() for row in rows)
    channels = Counter(row.channel for row in rows if row.status != CANCELLED and not row.walk_in)
    return EventStats(
        event=event,
        onsite=confirmed[ONSITE],
        online=confirmed[ONLINE],
        walk_ins=confirmed["walk_in"],
        waitlisted=statuses[WAITLISTED],
        cancelled=statuses[CANCELLED],
        checked_in=len(arrived),
        checked_in_online=sum(1 for row in arrived if row.attendance == ONLINE),
        registered_today=days[now.astimezone(content.tz).date()],
        per_day=sorted(days.items()),
        by_channel=sorted(channels.items(), key=lambda item: (-item[1], item[0] or "")),
    )


def _matching(
    event_id: str,
    *,
    q: str = "",
    status: str | None = None,
    checked_in: bool | None = None,
    attendance: str | None = None,
) -> Select:
    query = (
        select(Registration, Follower.channel)
        .outerjoin(Follower, Follower.openid == Registration.openid)
        .where(Registration.event_id == event_id)
    )
    if status is not None:
        query = query.where(Registration.status == status)
    if attendance is not None:
        query = query.where(Registration.attendance == attendance)
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
    attendance: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    latest_check_ins_first: bool = False,
) -> tuple[list[tuple[Registration, str | None]], int]:
    """Registrations (with the follower's channel) matching the filters, oldest first (or the latest check-ins
    first, for the desk), and their total.

    ``q`` finds a name or company containing it, an exact check-in code, or a phone ending in its digits.
    """
    query = _matching(event_id, q=q, status=status, checked_in=checked_in, attendance=attendance)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    order = (Registration.checked_in_at.desc().nulls_last(), Registration.id) if latest_check_ins_first else (Registration.id,)
    page = session.execute(query.order_by(*order).offset(offset).limit(limit)).all()
    return [(registration, channel) for registration, channel in page], total


def sharing_a_phone(session: Session, registrations: list[Registration]) -> set[int]:
    """The ids of those of ``registrations`` still active whose phone another active registration of the same
    event also gives (two people may share a phone; organizers see the flag and decide)."""
    other = aliased(Registration)
    shared = exists().where(
        other.event_id == Registration.event_id, other.phone == Registration.phone, other.id != Registration.id,
        other.status != CANCELLED,
    )
    ids = [registration.id for registration in registrations]
    return set(session.scalars(select(Registration.id).where(Registration.id.in_(ids), Registration.status != CANCELLED, shared)))


@dataclass(frozen=True)
class CheckIn:
    """A check-in done (or found already done) by an organizer."""

    registration: Registration
    channel: str | None
    already: bool

    @property
    def warning(self) -> str | None:
        """What whoever checks them in must be told: no seat was kept for someone who chose the livestream.
        The desk, the chat's 签到 and the CLI all say it with these words."""
        return texts.checkin_online_warning(self.registration) if self.registration.attendance == ONLINE else None


def _check_in(session: Session, registration: Registration | None, now: datetime, what: str) -> CheckIn:
    if registration is None:
        raise NotFound(what)
    already = registration.checked_in_at is not None
    if not check_in(session, registration, now):
        raise NotConfirmed(registration)
    follower = session.get(Follower, registration.openid)
    return CheckIn(registration, follower.channel if follower else None, already)


def registration_of_event(session: Session, event_id: str, registration_id: int) -> Registration:
    """Registration ``registration_id`` of the event; NotFound when there is none."""
    registration = session.get(Registration, registration_id)
    if registration is None or registration.event_id != event_id:
        raise NotFound(texts.organizer_unknown_registration(registration_id))
    return registration


def check_in_by_id(session: Session, event_id: str, registration_id: int, now: datetime) -> CheckIn:
    """Check in registration ``registration_id`` of the event; NotFound, or NotConfirmed unless confirmed."""
    return _check_in(session, registration_of_event(session, event_id, registration_id), now, "")


def check_in_by_code(session: Session, event_id: str, code: str, now: datetime) -> CheckIn:
    """Check in whoever holds ``code`` (any case) for the event; NotFound, or NotConfirmed unless confirmed."""
    registration = registration_by_code(session, event_id, code)
    return _check_in(session, registration, now, texts.admin_checkin_unknown(code.strip().upper()))


def undo_check_in_by_id(session: Session, event_id: str, registration_id: int, now: datetime) -> Registration:
    """Take back the check-in of registration ``registration_id`` (tapped by mistake); NotFound."""
    registration = registration_of_event(session, event_id, registration_id)
    undo_check_in(registration, now)
    return registration


def cancel_by_id(session: Session, event: Event, registration_id: int, now: datetime) -> SeatChange:
    """Cancel registration ``registration_id`` for its holder; a freed seat goes to the waitlist's head.

    The promoted follower is told as when a follower cancels in the chat (the caller queues the notice).
    """
    registration = registration_of_event(session, event.id, registration_id)
    return cancel(session, registration, capacity=event.capacity, now=now)


def walk_in(session: Session, event: Event, *, name: str, phone: str, now: datetime) -> Registration:
    """Add someone at the door, checked in; RoomFull when every seat on site is taken."""
    added = add_walk_in(session, event_id=event.id, name=name, phone=phone, capacity=event.capacity, now=now)
    if added is None:
        raise RoomFull(texts.organizer_room_full(event.capacity))
    return added


def check_audience(audience: str) -> None:
    if audience not in AUDIENCES:
        raise ValueError(texts.organizer_unknown_audience(audience))


def audience_openids(session: Session, event_id: str, audience: str) -> list[str]:
    """The followers a broadcast to ``audience`` reaches, in registration order."""
    check_audience(audience)
    conditions = {
        "confirmed": [Registration.status == CONFIRMED],
        "onsite": [Registration.status == CONFIRMED, Registration.attendance == ONSITE],
        "online": [Registration.status == CONFIRMED, Registration.attendance == ONLINE],
        "waitlisted": [Registration.status == WAITLISTED],
        "checked_in": [Registration.status == CONFIRMED, Registration.checked_in_at.is_not(None)],
        "not_checked_in": [Registration.status == CONFIRMED, Registration.checked_in_at.is_(None)],
        "all_registrants": [Registration.status != CANCELLED],
    }[audience]
    return list(
        session.scalars(
            select(Registration.openid)
            .where(Registration.event_id == event_id, Registration.walk_in.is_(False), *conditions)
            .order_by(Registration.id)
        )
    )
