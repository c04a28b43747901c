"""Reminder decisions and the scheduler's leader lease.

A reminder is identified by (event, offset, due time): moving an event in ``config.toml`` gives its
reminders new due times, so they are decided afresh. Each reminder is decided exactly once: a
``ReminderRun`` row, unique on that triple, records whether it was handed to the outbox (``sent``) or
``skipped`` and why. A reminder without a row has not been decided yet.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import AwareDateTime, Base

SENT = "sent"
SKIPPED = "skipped"
# The key of reminders in ``[delivery.templates]`` and ``[delivery.subscribe_templates]``.
REMINDER_TEMPLATE_KEY = "reminder"

class ReminderRun(Base):
    """What became of one reminder of one event: handed to the outbox, or skipped with the reason."""

    __tablename__ = "reminder_runs"
    __table_args__ = (UniqueConstraint("event_id", "offset_text", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64))
    # The offset as written in config.toml ("1d", "2h").
    offset_text: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(AwareDateTime())
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(255))
    # How many followers the reminder was addressed to (confirmed plus, when enabled, waitlisted).
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    decided_at: Mapped[datetime] = mapped_column(AwareDateTime())


class SchedulerLease(Base):
    """Who runs the scheduler, on databases without advisory locks (SQLite): a lease its holder renews."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(AwareDateTime())
