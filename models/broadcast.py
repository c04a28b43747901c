"""Broadcast bookkeeping beyond the outbox: drafts composed in the chat, schedules, and outcome reports.

The outbox's campaign is the broadcast (its id is the broadcast id everywhere); ``BroadcastPlan`` adds
when it is to be sent, whether it was cancelled first, and whom to tell the outcome. A scheduled
broadcast's deliveries wait in the outbox with ``not_before`` set to its time; cancelling removes them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import AwareDateTime, Base

SCHEDULED = "scheduled"
STARTED = "started"
CANCELLED = "cancelled"


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
    __table_args__ = (CheckConstraint(f"state IN ('{SCHEDULED}', '{STARTED}', '{CANCELLED}')", name="state"),)

    # The outbox campaign (models.outbox.Campaign.id). No foreign key: the outbox tables live on another
    # migration branch, and a plan is only ever written in the transaction that creates its campaign.
    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(String(16), index=True)
    send_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    # The admin who started it from the chat: they get the outcome as a customer-service message.
    report_to: Mapped[str | None] = mapped_column(String(64))
    reported_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
