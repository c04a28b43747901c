"""The admin audit trail: who saw or exported personal data, when, what and how many rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import AwareDateTime, Base

REVEAL_PHONE = "reveal_phone"
EXPORT_CSV = "export_csv"
EXPORT_XLSX = "export_xlsx"


class AuditEntry(Base):
    """One look at personal data by an organizer: a phone revealed, a CSV or .xlsx exported."""

    __tablename__ = "admin_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(AwareDateTime(), index=True)
    # The admin token's name, or "chat:<hashed openid>" for an organizer in the chat.
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str | None] = mapped_column(String(64))
    registration_id: Mapped[int | None] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)


def record_access(
    session: Session, *, actor: str, action: str, now: datetime, rows: int, event_id: str | None = None,
    registration_id: int | None = None,
) -> None:
    """Write an audit row in the caller's transaction, so the access and its record commit together."""
    session.add(
        AuditEntry(
            at=now, actor=actor, action=action, event_id=event_id, registration_id=registration_id, rows=rows
        )
    )


def audit_entries(session: Session, *, limit: int, offset: int = 0) -> list[AuditEntry]:
    """The newest entries first."""
    return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)))
