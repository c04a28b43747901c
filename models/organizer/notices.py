"""What organizers hear without asking: a notice on each registration and a daily digest (counts, new
registrations, the questions the bot could not answer), as outbox
messages to the admin openids (customer-service texts: WeChat delivers them within 48 hours of the
organizer's last message to the account)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from models import texts
from models.content import Content, Event
from models.deliveries import enqueue_message
from models.organizer.inbox import open_groups
from models.organizer.registrations import event_stats
from models.outbox import Campaign
from models.registration import Registration

REGISTRATION_NOTICE_PURPOSE = "organizer_notice"
DIGEST_PURPOSE = "organizer_digest"
# A digest covers the registrations of the day before it.
DIGEST_PERIOD = timedelta(days=1)


def notify_registration(
    session: Session, content: Content, admin_openids: Iterable[str], event: Event, registration: Registration,
    *, phone_shared: bool = False,
) -> None:
    """Tell each organizer about a new registration, in the registration's transaction (when configured);
    ``phone_shared``: another follower registered for the event with the same phone, which the notice says."""
    if not content.organizer_notices.on_registration:
        return
    text = texts.organizer_registration_notice(event, registration, phone_shared)
    for openid in sorted(admin_openids):
        enqueue_message(
            session, openid=openid, text=text, purpose=REGISTRATION_NOTICE_PURPOSE,
            dedup_key=f"{registration_notice_key_prefix(registration.id)}{openid}", event_id=event.id,
        )


def registration_notice_key_prefix(registration_id: int) -> str:
    """The start of the outbox keys of the notices about one registration (one per organizer)."""
    return f"{REGISTRATION_NOTICE_PURPOSE}:{registration_id}:"


def queue_daily_digest(session: Session, content: Content, admin_openids: Iterable[str], now: datetime) -> bool:
    """Once the day's digest time has come, queue the digest of the current event to each organizer, once a
    day (the outbox key), however often the scheduler's sweep asks; True when it was queued now."""
    at = content.organizer_notices.digest_time
    organizers = sorted(admin_openids)
    local = now.astimezone(content.tz)
    if at is None or not organizers or local.time() < at:
        return False
    keys = {openid: f"{DIGEST_PURPOSE}:{local.date().isoformat()}:{openid}" for openid in organizers}
    if session.scalar(select(exists().where(Campaign.dedup_key.in_(keys.values())))):
        return False
    event = content.current_event(now)
    new = session.scalars(
        select(Registration)
        .where(
            Registration.event_id == event.id,
            Registration.created_at > now - DIGEST_PERIOD,
            Registration.walk_in.is_(False),
        )
        .order_by(Registration.id)
    ).all()
    unanswered = open_groups(session, event.id)
    text = texts.organizer_digest(event_stats(session, content, event, now), new, unanswered, local.date())
    for openid, key in keys.items():
        enqueue_message(session, openid=openid, text=text, purpose=DIGEST_PURPOSE, dedup_key=key, event_id=event.id)
    return True
