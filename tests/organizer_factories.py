"""Small factories for organizer tests: followers and registrations written through the models' own rules."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from models.follower import Follower
from models.registration import ONSITE, Registration, cancel, check_in, register

EVENT_ID = "meetup-10"


def add_registration(
    session: Session,
    openid: str,
    *,
    now: datetime,
    name: str = "张三",
    phone: str = "13812345678",
    company: str = "火山引擎",
    title: str = "工程师",
    channel: str | None = None,
    capacity: int = 200,
    checked_in: bool = False,
    cancelled: bool = False,
    attendance: str = ONSITE,
    event_id: str = EVENT_ID,
) -> Registration:
    """A follower (with ``channel``) registered as a seat allows, optionally checked in or cancelled."""
    if session.get(Follower, openid) is None:
        session.add(Follower(openid=openid, channel=channel, first_seen_at=now, last_interaction_at=now))
        session.flush()
    answers = {"name": name, "phone": phone, "company": company, "title": title}
    registration = register(
        session, event_id=event_id, openid=openid, answers=answers, attendance=attendance, capacity=capacity, now=now
    )
    if checked_in:
        check_in(session, registration, now)
    if cancelled:
        cancel(session, registration, capacity=capacity, now=now)
    session.flush()
    return registration

ADMIN_TOKEN = "organizer-token"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
