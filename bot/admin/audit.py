"""``/admin/api/audit``: who revealed a phone or exported registrations, when, and how many rows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from bot.admin.registrations import DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE
from bot.deps import SessionDep
from models.audit import audit_entries

audit_router = APIRouter(prefix="/audit", tags=["audit"])


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    event_id: str | None
    registration_id: int | None
    rows: int


class AuditList(BaseModel):
    items: list[AuditEntryOut]


@audit_router.get("", response_model=AuditList)
def list_audit(
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> AuditList:
    """Audit entries, newest first."""
    entries = audit_entries(session, limit=page_size, offset=(page - 1) * page_size)
    return AuditList(items=[AuditEntryOut.model_validate(entry, from_attributes=True) for entry in entries])
