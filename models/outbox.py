"""The outbox: campaigns (what to say, to whom) and one delivery row per (campaign, openid).

Every outbound message, whatever its trigger, is first written here in the trigger's own transaction, so
it commits with the trigger's effects; the sender (``scheduler.sender``) sends it later. The rows also
hold the shared WeChat access token, the sender's account-wide pause and the subscribe-message
acceptances followers gave.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import AwareDateTime, Base

# Delivery states: pending → claimed → sending → sent | failed | unknown, or pending → unreachable. A
# transient failure (and an account-wide pause) goes back to pending, a transient one with a later
# ``not_before``. "claimed" rows have provably not been sent; "sending" rows may have reached WeChat, and
# "unknown" is such a row whose sender stopped before learning the answer (see ``scheduler.sender``).
PENDING = "pending"
CLAIMED = "claimed"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
UNREACHABLE = "unreachable"
UNKNOWN = "unknown"
FINISHED_STATES = (SENT, FAILED, UNREACHABLE, UNKNOWN)


class Campaign(Base):
    """One message for a set of followers: a broadcast, a reminder, a single notice."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # What made it: "broadcast", "reminder", "waitlist_promotion", "late_reply" …
    purpose: Mapped[str] = mapped_column(String(32))
    # Makes enqueueing idempotent: the same key never makes a second campaign.
    dedup_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    event_id: Mapped[str | None] = mapped_column(String(64))
    audience: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    # The key in ``[delivery.templates]`` / ``[delivery.subscribe_templates]`` for the template and
    # subscribe channels; None means only a customer-service text can carry this message.
    template_key: Mapped[str | None] = mapped_column(String(32))
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    # The database's clock: enqueueing happens inside callers that need not pass a time.
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), server_default=func.now())


class Delivery(Base):
    """One message to one follower and what became of it."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("campaign_id", "openid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    openid: Mapped[str] = mapped_column(String(64))
    # This follower's own wording (a reminder carrying their check-in code); None: the campaign's text.
    text: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=PENDING, index=True)
    # Not sent before this time (None: at once); transient failures back off by moving it forward.
    not_before: Mapped[datetime | None] = mapped_column(AwareDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Which sender run claimed the row; a "sending" row with a dead claim is resolved on restart.
    attempt_id: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(24))
    msgid: Mapped[str | None] = mapped_column(String(64))
    errcode: Mapped[int | None] = mapped_column(Integer)
    errmsg: Mapped[str | None] = mapped_column(String(255))
    claimed_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(AwareDateTime())


class AccessToken(Base):
    """The one WeChat access token all processes share, per app id."""

    __tablename__ = "wechat_access_tokens"

    app_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str] = mapped_column(String(512), default="")
    expires_at: Mapped[datetime | None] = mapped_column(AwareDateTime())


class SenderState(Base):
    """Account-wide state of the sender: paused by an error that no retry fixes (quota, IP whitelist)."""

    __tablename__ = "sender_state"

    app_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused_errcode: Mapped[int | None] = mapped_column(Integer)
    paused_errmsg: Mapped[str | None] = mapped_column(String(255))
    paused_at: Mapped[datetime | None] = mapped_column(AwareDateTime())


class SubscribeAcceptance(Base):
    """A follower accepted a 订阅通知 template: each acceptance allows one bizsend of that template."""

    __tablename__ = "subscribe_acceptances"

    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    template_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    remaining: Mapped[int] = mapped_column(Integer, default=0)
    accepted_at: Mapped[datetime] = mapped_column(AwareDateTime())


def record_subscribe_acceptances(session: Session, openid: str, template_ids: list[str], now: datetime) -> None:
    """Count one more allowed subscribe message per template the follower just accepted."""
    for template_id in template_ids:
        acceptance = session.get(SubscribeAcceptance, (openid, template_id))
        if acceptance is None:
            acceptance = SubscribeAcceptance(openid=openid, template_id=template_id, remaining=0)
            session.add(acceptance)
        acceptance.remaining += 1
        acceptance.accepted_at = now


def account_pause(session: Session, app_id: str) -> SenderState | None:
    """The account-wide pause in force for ``app_id``, if any."""
    state = session.get(SenderState, app_id)
    return state if state is not None and state.paused_errcode is not None else None


def locked_row(session: Session, model: type[Base], key: str, **defaults) -> Base:
    """The ``model`` row with primary key ``key``, locked for this transaction; created from ``defaults`` if missing.

    Two processes may both find it missing: the loser's insert fails inside a savepoint, and its locking
    read then waits for the winner's transaction.
    """
    row = session.get(model, key, with_for_update=True)
    if row is not None:
        return row
    try:
        with session.begin_nested():
            session.add(model(**defaults))
    except IntegrityError:
        pass
    return session.get(model, key, with_for_update=True, populate_existing=True)


def pause_account(session: Session, app_id: str, errcode: int | None, errmsg: str, now: datetime) -> None:
    """Record the account-wide error that stops all sending for ``app_id`` until resumed."""
    state = locked_row(session, SenderState, app_id, app_id=app_id)
    state.paused_errcode, state.paused_errmsg, state.paused_at = errcode, errmsg[:255], now
