"""``/admin/api/events/{event_id}/registrations``: an event's registrations, searched, exported, checked in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from bot.admin.errors import service_errors
from bot.admin.export import registrations_csv
from bot.deps import NowDep, RowId, SessionDep, SettingsDep
from models import organizer
from models.registration import Registration

registrations_router = APIRouter(prefix="/events/{event_id}/registrations", tags=["registrations"])

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
# Far beyond any event's registrations; keeps the offset within what every database accepts.
MAX_PAGE = 100_000


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


@dataclass(frozen=True)
class RegistrationFilters:
    """The filters shared by the list and the CSV export (query parameters)."""

    q: Annotated[
        str, Query(max_length=64, description="Name or company containing it, a check-in code, or the phone's last digits.")
    ] = ""
    status: Annotated[Literal["confirmed", "waitlisted", "cancelled"] | None, Query()] = None
    checked_in: Annotated[bool | None, Query(description="true: arrived; false: not (yet) checked in.")] = None

    def search(self, session, event_id: str, **page) -> tuple[list[tuple[Registration, str | None]], int]:
        return organizer.search_registrations(
            session, event_id, q=self.q, status=self.status, checked_in=self.checked_in, **page
        )


FiltersDep = Annotated[RegistrationFilters, Depends()]


@registrations_router.get("", response_model=RegistrationList)
def list_registrations(
    event_id: str,
    filters: FiltersDep,
    session: SessionDep,
    settings: SettingsDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> RegistrationList:
    """The event's registrations, oldest first, with the follower's QR channel; 404 for an unknown event."""
    with service_errors():
        organizer.require_event(settings.content, event_id)
    rows, total = filters.search(session, event_id, limit=page_size, offset=(page - 1) * page_size)
    return RegistrationList(items=[registration_out(*row) for row in rows], total=total)


@registrations_router.get(".csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def export_registrations(event_id: str, filters: FiltersDep, session: SessionDep, settings: SettingsDep) -> Response:
    """The same registrations as CSV: UTF-8 with BOM for Excel, formula-like cells neutralised."""
    with service_errors():
        organizer.require_event(settings.content, event_id)
    rows, _total = filters.search(session, event_id)
    return Response(
        registrations_csv(rows, settings.tz),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="registrations-{event_id}.csv"'},
    )


@registrations_router.post("/{registration_id}/checkin", response_model=RegistrationOut)
def check_in(
    event_id: str, registration_id: RowId, session: SessionDep, settings: SettingsDep, now: NowDep
) -> RegistrationOut:
    """Check a registration in (again: no change); 404 for an unknown event or id, 409 unless confirmed."""
    with service_errors():
        organizer.require_event(settings.content, event_id)
        done = organizer.check_in_by_id(session, event_id, registration_id, now)
    return registration_out(done.registration, done.channel)
