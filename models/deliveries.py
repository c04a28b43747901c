"""Writing to the outbox: campaigns and their delivery rows, inside the caller's transaction.

Nothing here talks to WeChat. A trigger (a broadcast, a waitlist promotion, a late reply) records what
should be sent in the same transaction as its own effects, so either both happen or neither; the sender
(``scheduler.sender``) delivers the rows later, outside any webhook request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.outbox import PENDING, Campaign, Delivery

# A chat reply that overran WeChat's 5 s, sent as a customer-service text instead (``bot.late_replies``).
LATE_REPLY_PURPOSE = "late_reply"


def create_campaign(
    session: Session,
    *,
    openids: Iterable[str],
    text: str,
    purpose: str,
    dedup_key: str | None = None,
    event_id: str | None = None,
    audience: str | None = None,
    template_key: str | None = None,
    texts: Mapping[str, str] | None = None,
) -> Campaign:
    """A campaign with one pending delivery per distinct openid; an existing one when ``dedup_key`` was used.

    With ``template_key`` the template and subscribe channels may carry the message; without it only a
    customer-service text can. ``texts`` gives some followers their own wording (a reminder with their
    check-in code) instead of ``text``.
    """
    if dedup_key is not None:
        existing = session.scalar(select(Campaign).where(Campaign.dedup_key == dedup_key))
        if existing is not None:
            return existing
    recipients = list(dict.fromkeys(openids))
    campaign = Campaign(
        purpose=purpose,
        dedup_key=dedup_key,
        event_id=event_id,
        audience=audience,
        text=text,
        template_key=template_key,
        recipients=len(recipients),
    )
    try:
        # A savepoint, so a concurrent insert of the same dedup_key (PostgreSQL) leaves the caller's
        # transaction usable; SQLite's BEGIN IMMEDIATE already rules that race out.
        with session.begin_nested():
            session.add(campaign)
            session.flush()
    except IntegrityError:
        return session.scalars(select(Campaign).where(Campaign.dedup_key == dedup_key)).one()
    add_deliveries(session, campaign, recipients, texts=texts)
    return campaign


def add_deliveries(
    session: Session, campaign: Campaign, openids: Iterable[str], *, texts: Mapping[str, str] | None = None
) -> int:
    """Address ``campaign`` to each of ``openids`` it does not reach yet; how many followers it reaches now.

    Idempotent: adding the same followers again adds nothing (and the unique (campaign, openid) refuses a
    concurrent duplicate).
    """
    already = set(session.scalars(select(Delivery.openid).where(Delivery.campaign_id == campaign.id)))
    personal = texts or {}
    rows = [
        {"campaign_id": campaign.id, "openid": openid, "status": PENDING, "text": personal.get(openid)}
        for openid in dict.fromkeys(openids)
        if openid not in already
    ]
    if rows:
        # One bulk INSERT: a reminder to every registrant is ten thousand rows, too many to add one by one.
        session.execute(insert(Delivery), rows)
    return session.scalar(select(func.count()).where(Delivery.campaign_id == campaign.id))


def enqueue_message(
    session: Session, *, openid: str, text: str, purpose: str, dedup_key: str, event_id: str | None = None
) -> None:
    """Record a customer-service text to one follower, committed with the caller's transaction; ``event_id``
    names the event it is about, when the retention purge must find it.

    Idempotent on ``dedup_key``: enqueueing the same key again records nothing new.
    """
    create_campaign(session, openids=[openid], text=text, purpose=purpose, dedup_key=dedup_key, event_id=event_id)
