"""Broadcast bookkeeping beyond the outbox: drafts composed in the chat, schedules, and outcome reports.

The outbox's campaign is the broadcast (its id is the broadcast id everywhere); ``BroadcastPlan`` adds
when it is to be sent, what became of it, and whom to tell the outcome. A scheduled broadcast is a
campaign without deliveries until its time: then the scheduler addresses it to its audience as it is at
that moment (``models.organizer.start_scheduled_broadcast``), or skips it when it is too late.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import AwareDateTime, Base

# A plan's states: scheduled → started (its deliveries written) | cancelled | skipped (its time passed
# while no scheduler ran, beyond the grace window). An immediate broadcast starts as "started".
SCHEDULED = "scheduled"
STARTED = "started"
CANCELLED = "cancelled"
SKIPPED = "skipped"
PLAN_STATES = (SCHEDULED, STARTED, CANCELLED, SKIPPED)


class BroadcastDraft(Base):
    """A broadcast an admin composed in the chat; it is sent only after they reply 确认广播."""

    __tablename__ = "broadcast_drafts"

    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64))
    audience: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime())


class BroadcastPlan(Base):
    """When a broadcast campaign is sent and who hears how it went."""

    __tablename__ = "broadcast_plans"
    __table_args__ = (CheckConstraint(f"state IN {PLAN_STATES}", name="state"),)

    # The outbox campaign (models.outbox.Campaign.id). No foreign key: the outbox tables live on another
    # migration branch, and a plan is only ever written in the transaction that creates its campaign.
    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(String(16), index=True)
    send_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    # Why a skipped broadcast was not sent.
    skip_reason: Mapped[str | None] = mapped_column(String(255))
    # The admin who started it from the chat: they get the outcome as a customer-service message.
    report_to: Mapped[str | None] = mapped_column(String(64))
    reported_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
