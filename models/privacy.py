"""Personal data in the database: what a follower sees with 我的信息, erasure on request, retention.

Personal fields are the form's answers (``FIELD_COLUMNS``). Erasing them keeps the registration as an
anonymous row, so counts by status, channel and attendance and the waitlist stay right. A follower's own
erasure also replaces the openid with a random pseudonym in registrations and deliveries; retention
keeps the openid, which the per-channel counts join on, since the follower still follows the account.
Both also reach the messages to organizers that name registrants (``ORGANIZER_MESSAGES``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from models.content import Content, Event
from models.follower import Follower
from models.inbox import InboxQuestion
from models.kept_answers import KeptAnswers, forget_kept_answers
from models.organizer.broadcasts import REPORT_PURPOSE
from models.organizer.notices import DIGEST_PURPOSE, REGISTRATION_NOTICE_PURPOSE, registration_notice_key_prefix
from models.outbox import PENDING, Campaign, Delivery
from models.registration import (
    CANCELLED,
    FIELD_COLUMNS,
    FormState,
    Registration,
    cancel,
)

# Messages to organizers that name registrants: the notice of each registration (name, company), the daily
# digest and a broadcast's report (names). Each goes to one organizer and records the event it is about.
ORGANIZER_MESSAGES = (REGISTRATION_NOTICE_PURPOSE, DIGEST_PURPOSE, REPORT_PURPOSE)


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
    counts. Answers kept for registering again are deleted. Deliveries not yet sent are dropped, others keep
    only their outcome; so are the messages to organizers that name the follower. Questions in the
    organizers' inbox are deleted. The follower's form and stored replies are the caller's to clear (it
    holds the form; the ledger may be Redis).
    """
    pseudonym = f"erased-{secrets.token_hex(8)}"
    erasure = Erasure()
    registrations = registrations_of(session, openid)
    _erase_from_organizer_messages(session, openid, registrations)  # first: names and questions find them
    for registration in registrations:
        event = content.event_by_id(registration.event_id)
        if registration.status != CANCELLED and event is not None and now < event.starts_at:
            change = cancel(session, registration, capacity=event.capacity, now=now)
            if change.promoted:
                erasure.promoted.append((event, change.promoted))
        erase_fields(registration, now)
        registration.openid = pseudonym
        erasure.registrations += 1
    forget_kept_answers(session, openid)
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
    _drop_unsent_and_empty_sent(session, own)
    session.execute(delete(Delivery).where(Delivery.openid == openid, Delivery.status == PENDING))
    session.execute(update(Delivery).where(Delivery.openid == openid).values(openid=pseudonym, text=None))


def _erase_from_organizer_messages(session: Session, openid: str, registrations: list[Registration]) -> None:
    """The messages to organizers about the follower: the notices of their registrations (by outbox key),
    and the digests and reports that hold one of their names or quote one of their questions (a namesake's,
    or the same question from another follower, too: erring on erasure)."""
    naming = [
        Campaign.dedup_key.startswith(registration_notice_key_prefix(registration.id), autoescape=True)
        for registration in registrations
    ]
    words = {r.name for r in registrations if r.name}
    words |= set(session.scalars(select(InboxQuestion.text).where(InboxQuestion.openid == openid)))
    naming += [Campaign.text.contains(word, autoescape=True) for word in words]
    if naming:
        found = session.scalars(select(Campaign.id).where(Campaign.purpose.in_(ORGANIZER_MESSAGES), or_(*naming)))
        _drop_unsent_and_empty_sent(session, set(found))


def _drop_unsent_and_empty_sent(session: Session, campaign_ids: set[int]) -> None:
    """Messages to one follower each: dropped while their delivery waits, emptied once it went (the
    delivery keeps its outcome, for the reports)."""
    unsent = set(
        session.scalars(
            select(Delivery.campaign_id).where(Delivery.campaign_id.in_(campaign_ids), Delivery.status == PENDING)
        )
    )
    session.execute(delete(Delivery).where(Delivery.campaign_id.in_(unsent)))
    session.execute(delete(Campaign).where(Campaign.id.in_(unsent)))
    session.execute(update(Campaign).where(Campaign.id.in_(campaign_ids - unsent)).values(text=""))


@dataclass(frozen=True)
class Purge:
    """Personal data of an event past its retention period: how many registrations hold personal fields,
    and how many messages to organizers (``ORGANIZER_MESSAGES``) still hold their text."""

    event_id: str
    registrations: int
    organizer_messages: int


def expired_events(content: Content, now: datetime) -> list[Event]:
    """Events that ended ``keep_days_after_event`` days ago or more."""
    return [event for event in content.events if event.ends_at + content.privacy.retention <= now]


def _holding_personal_fields(event_id: str):
    return (Registration.event_id == event_id, Registration.erased_at.is_(None))


def _organizer_messages_with_text(event_id: str):
    return (Campaign.purpose.in_(ORGANIZER_MESSAGES), Campaign.event_id == event_id, Campaign.text != "")


def purge_expired(session: Session, content: Content, now: datetime, *, dry_run: bool = False) -> list[Purge]:
    """Erase the personal fields of every event past its retention period (``dry_run``: only count them).

    Registrations keep status, attendance, check-in time and openid, so the counts stay; forms still
    open for such an event, answers kept for registering again, and the followers' questions in its inbox,
    are dropped, and so are the messages to organizers about it that wait (those sent keep only their
    outcome).
    """
    purges = []
    for event in expired_events(content, now):
        condition = _holding_personal_fields(event.id)
        count = session.scalar(select(func.count()).where(*condition))
        messages = set(session.scalars(select(Campaign.id).where(*_organizer_messages_with_text(event.id))))
        if count or messages:
            purges.append(Purge(event.id, count, len(messages)))
        if dry_run:
            continue
        if count:
            session.execute(
                update(Registration).where(*condition).values(**dict.fromkeys(FIELD_COLUMNS), erased_at=now)
            )
        _drop_unsent_and_empty_sent(session, messages)
        session.execute(delete(FormState).where(FormState.event_id == event.id))
        session.execute(delete(KeptAnswers).where(KeptAnswers.event_id == event.id))
        session.execute(delete(InboxQuestion).where(InboxQuestion.event_id == event.id))
    return purges
