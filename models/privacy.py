"""Personal data in the database: what a follower sees with 我的信息, erasure on request, retention.

Personal fields are the form's answers (``FIELD_COLUMNS``). Erasing them keeps the registration as an
anonymous row, so counts by status, channel and attendance and the waitlist stay right. A follower's own
erasure also replaces the openid with a random pseudonym in registrations and deliveries; retention
keeps the openid, which the per-channel counts join on, since the follower still follows the account.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from models.content import Content, Event
from models.follower import Follower
from models.inbox import InboxQuestion
from models.outbox import PENDING, Campaign, Delivery
from models.registration import (
    CANCELLED,
    FIELD_COLUMNS,
    FormState,
    Registration,
    cancel,
)


@dataclass
class Erasure:
    """What erasing a follower's data did: registrations made anonymous, and who the freed seats went to."""

    registrations: int = 0
    promoted: list[tuple[Event, list[Registration]]] = field(default_factory=list)


def registrations_of(session: Session, openid: str) -> list[Registration]:
    """Every registration the follower made, oldest first, cancelled ones included."""
    return list(session.scalars(select(Registration).where(Registration.openid == openid).order_by(Registration.id)))


def follower_channel(session: Session, openid: str) -> str | None:
    """The QR channel the follower came through, if recorded."""
    return session.scalar(select(Follower.channel).where(Follower.openid == openid))


def erase_fields(registration: Registration, now: datetime) -> None:
    """Erase the registration's personal fields (the form's answers); the row stays for the counts."""
    for name in FIELD_COLUMNS:
        setattr(registration, name, None)
    registration.erased_at = now


def erase_follower(session: Session, openid: str, content: Content, now: datetime) -> Erasure:
    """Erase ``openid``'s personal fields from registrations and the outbox, in the caller's transaction.

    A registration for an event not yet started is cancelled first (a freed seat goes to the waitlist:
    the caller notifies ``promoted``); one for an event under way or over keeps its status, for the
    counts. Deliveries not yet sent are dropped, others keep only their outcome; questions in the
    organizers' inbox are deleted. The follower's form and
    stored replies are the caller's to clear (it holds the form; the ledger may be Redis).
    """
    pseudonym = f"erased-{secrets.token_hex(8)}"
    erasure = Erasure()
    for registration in registrations_of(session, openid):
        event = content.event_by_id(registration.event_id)
        if registration.status != CANCELLED and event is not None and now < event.starts_at:
            change = cancel(session, registration, capacity=event.capacity, now=now)
            if change.promoted:
                erasure.promoted.append((event, change.promoted))
        erase_fields(registration, now)
        registration.openid = pseudonym
        erasure.registrations += 1
    _erase_from_outbox(session, openid, pseudonym)
    # Their own words, kept for the organizers' inbox: gone, with the answer they would have got.
    session.execute(delete(InboxQuestion).where(InboxQuestion.openid == openid))
    session.execute(update(Follower).where(Follower.openid == openid).values(channel=None))
    return erasure


def _erase_from_outbox(session: Session, openid: str, pseudonym: str) -> None:
    # A notice to this follower alone (a waitlist promotion, a late reply) carries their own words: dropped
    # when not yet sent, emptied when sent. A broadcast's text is the organizers', only the row is changed.
    own = set(
        session.scalars(
            select(Delivery.campaign_id).join(Campaign).where(Delivery.openid == openid, Campaign.recipients == 1)
        )
    )
    unsent_own = set(
        session.scalars(
            select(Delivery.campaign_id).where(
                Delivery.openid == openid, Delivery.status == PENDING, Delivery.campaign_id.in_(own)
            )
        )
    )
    session.execute(delete(Delivery).where(Delivery.campaign_id.in_(unsent_own)))
    session.execute(delete(Campaign).where(Campaign.id.in_(unsent_own)))
    session.execute(update(Campaign).where(Campaign.id.in_(own - unsent_own)).values(text=""))
    session.execute(delete(Delivery).where(Delivery.openid == openid, Delivery.status == PENDING))
    session.execute(update(Delivery).where(Delivery.openid == openid).values(openid=pseudonym, text=None))


@dataclass(frozen=True)
class Purge:
    """Personal fields of an event past its retention period: how many registrations hold some."""

    event_id: str
    registrations: int


def expired_events(content: Content, now: datetime) -> list[Event]:
    """Events that ended ``keep_days_after_event`` days ago or more."""
    return [event for event in content.events if event.ends_at + content.privacy.retention <= now]


def _holding_personal_fields(event_id: str):
    return (Registration.event_id == event_id, Registration.erased_at.is_(None))


def purge_expired(session: Session, content: Content, now: datetime, *, dry_run: bool = False) -> list[Purge]:
    """Erase the personal fields of every event past its retention period (``dry_run``: only count them).

    Registrations keep status, attendance, check-in time and openid, so the counts stay; forms still
    open for such an event, and the followers' questions in its inbox, are dropped.
    """
    purges = []
    for event in expired_events(content, now):
        condition = _holding_personal_fields(event.id)
        count = session.scalar(select(func.count()).where(*condition))
        if count:
            purges.append(Purge(event.id, count))
        if dry_run:
            continue
        if count:
            session.execute(
                update(Registration).where(*condition).values(**dict.fromkeys(FIELD_COLUMNS), erased_at=now)
            )
        session.execute(delete(FormState).where(FormState.event_id == event.id))
        session.execute(delete(InboxQuestion).where(InboxQuestion.event_id == event.id))
    return purges
