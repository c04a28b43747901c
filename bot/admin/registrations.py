"""``/admin/api/events/{event_id}/registrations``: the read side of an event's registrations."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from bot import organizer
from bot.admin.errors import service_errors
from bot.deps import SessionDep, SettingsDep
from models.registration import Registration

registrations_router = APIRouter(prefix="/events/{event_id}/registrations", tags=["registrations"])


class RegistrationOut(BaseModel):
    id: int
    openid: str
    status: str
    position: int | None
    name: str | None
    phone: str | None
    company: str | None
    title: str | None
    attendance: str
    checkin_code: str
    channel: str | None
    created_at: datetime
    checked_in_at: datetime | None


class RegistrationList(BaseModel):
    items: list[RegistrationOut]
    total: int


def registration_out(registration: Registration, channel: str | None) -> RegistrationOut:
    return RegistrationOut(
        id=registration.id,
        openid=registration.openid,
        status=registration.status,
        position=registration.position,
        name=registration.name,
        phone=registration.phone,
        company=registration.company,
        title=registration.title,
        attendance=registration.attendance,
        checkin_code=registration.checkin_code,
        channel=channel,
        created_at=registration.created_at,
        checked_in_at=registration.checked_in_at,
    )


@registrations_router.get("", response_model=RegistrationList)
def list_registrations(event_id: str, session: SessionDep, settings: SettingsDep) -> RegistrationList:
    """Every registration of the event, oldest first, with the follower's QR channel; 404 for an unknown event."""
    with service_errors():
        organizer.require_event(settings, event_id)
    rows, total = organizer.search_registrations(session, event_id)
    return RegistrationList(items=[registration_out(*row) for row in rows], total=total)
