"""``/admin/api/events/{event_id}/registrations``: an event's registrations, searched, exported, checked in.

Phones are masked in the list; revealing one and exporting the CSV (full phones) each write an audit row
naming the admin token, in the same transaction as the read. Openids are never shown, only their hash (as
in the logs): organizers reach followers through the bot, which addresses them by registration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, Field

from bot.admin.errors import invalid_input, service_errors
from bot.admin.export import registrations_csv, registrations_xlsx
from bot.deps import AdminNameDep, NowDep, RowId, SessionDep, SettingsDep
from handlers.registration import notify_promoted
from handlers.registration_form import Invalid, parse_phone
from models import organizer
from models.audit import EXPORT_CSV, EXPORT_XLSX, REVEAL_PHONE, record_access
from models.redact import hash_openid, mask_phone_numbers
from models.registration import Registration

registrations_router = APIRouter(prefix="/events/{event_id}/registrations", tags=["registrations"])

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
# Far beyond any event's registrations; keeps the offset within what every database accepts.
MAX_PAGE = 100_000


class RegistrationOut(BaseModel):
    id: int
    # The follower's openid hashed, as the logs carry it: tells followers apart without the openid itself.
    openid_hash: str
    status: str
    position: int | None
    name: str | None
    phone: str | None
    company: str | None
    title: str | None
    attendance: str
    # Added at the door by an organizer, without WeChat.
    walk_in: bool
    checkin_code: str
    channel: str | None
    created_at: datetime
    checked_in_at: datetime | None


class RevealedPhone(BaseModel):
    id: int
    phone: str | None


class ListedRegistration(RegistrationOut):
    # Another active registration of the event gives the same phone (flagged, not refused: phones are shared).
    phone_shared: bool


class RegistrationList(BaseModel):
    items: list[ListedRegistration]
    total: int


def registration_out(registration: Registration, channel: str | None) -> RegistrationOut:
    return RegistrationOut(
        id=registration.id,
        openid_hash=hash_openid(registration.openid),
        status=registration.status,
        position=registration.position,
        name=registration.name,
        phone=mask_phone_numbers(registration.phone) if registration.phone else None,
        company=registration.company,
        title=registration.title,
        attendance=registration.attendance,
        walk_in=registration.walk_in,
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
    attendance: Annotated[Literal["onsite", "online"] | None, Query(description="onsite or online.")] = None

    def search(self, session, event_id: str, **page) -> tuple[list[tuple[Registration, str | None]], int]:
        return organizer.search_registrations(
            session, event_id, q=self.q, status=self.status, checked_in=self.checked_in, attendance=self.attendance,
            **page,
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
    order: Annotated[
        Literal["registered", "checked_in"], Query(description="checked_in: the latest check-ins first (the desk).")
    ] = "registered",
) -> RegistrationList:
    """The event's registrations, oldest first, with the follower's QR channel and whether another registration
    gives the same phone; 404 for an unknown event."""
    with service_errors():
        organizer.require_event(settings.content, event_id)
    rows, total = filters.search(
        session, event_id, limit=page_size, offset=(page - 1) * page_size, latest_check_ins_first=order == "checked_in"
    )
    shared = organizer.sharing_a_phone(session, [registration for registration, _ in rows])
    items = [
        ListedRegistration(**registration_out(registration, channel).model_dump(), phone_shared=registration.id in shared)
        for registration, channel in rows
    ]
    return RegistrationList(items=items, total=total)


def _audited_export(
    event_id: str, filters, session, settings, admin: str, now, *, action: str, document, media_type: str, suffix: str
) -> Response:
    """The filtered registrations as a download, with the audit row that says who exported how many."""
    with service_errors():
        organizer.require_event(settings.content, event_id)
    rows, total = filters.search(session, event_id)
    record_access(session, actor=admin, action=action, now=now, rows=total, event_id=event_id)
    return Response(
        document(rows, settings.tz),
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="registrations-{event_id}.{suffix}"'},
    )


RawQuery = Annotated[bool, Query(description="true: machine column names and values, ISO times (for scripts).")]


@registrations_router.get(".csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def export_registrations(
    event_id: str,
    filters: FiltersDep,
    session: SessionDep,
    settings: SettingsDep,
    admin: AdminNameDep,
    now: NowDep,
    raw: RawQuery = False,
) -> Response:
    """The same registrations as CSV, full phones included (audited), in Chinese unless ``raw``: UTF-8 with BOM
    for Excel, formula-like cells neutralised."""
    return _audited_export(
        event_id, filters, session, settings, admin, now,
        action=EXPORT_CSV, document=partial(registrations_csv, raw=raw), media_type="text/csv; charset=utf-8",
        suffix="csv",
    )


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@registrations_router.get(".xlsx", response_class=Response, responses={200: {"content": {XLSX_TYPE: {}}}})
def export_registrations_xlsx(
    event_id: str,
    filters: FiltersDep,
    session: SessionDep,
    settings: SettingsDep,
    admin: AdminNameDep,
    now: NowDep,
    raw: RawQuery = False,
) -> Response:
    """The same registrations as an Excel workbook, full phones included (audited): a bold, frozen header row
    and columns fitted to their content."""
    return _audited_export(
        event_id, filters, session, settings, admin, now,
        action=EXPORT_XLSX, document=partial(registrations_xlsx, raw=raw), media_type=XLSX_TYPE, suffix="xlsx",
    )


@registrations_router.get("/{registration_id}/phone", response_model=RevealedPhone)
def reveal_phone(
    event_id: str, registration_id: RowId, session: SessionDep, settings: SettingsDep, admin: AdminNameDep, now: NowDep
) -> RevealedPhone:
    """One registrant's full phone number (audited); 404 for an unknown event or id."""
    with service_errors():
        organizer.require_event(settings.content, event_id)
        registration = organizer.registration_of_event(session, event_id, registration_id)
    record_access(
        session, actor=admin, action=REVEAL_PHONE, now=now, rows=1, event_id=event_id, registration_id=registration.id
    )
    return RevealedPhone(id=registration.id, phone=registration.phone)


class CheckInOut(RegistrationOut):
    """A check-in, with whether it was done before and what the person at the desk must be told."""

    already: bool
    # Set when they registered to watch online: no seat was kept for them.
    warning: str | None


def check_in_out(done: organizer.CheckIn) -> CheckInOut:
    return CheckInOut(
        **registration_out(done.registration, done.channel).model_dump(), already=done.already, warning=done.warning
    )


@registrations_router.post("/{registration_id}/checkin", response_model=CheckInOut)
def check_in(event_id: str, registration_id: RowId, session: SessionDep, settings: SettingsDep, now: NowDep) -> CheckInOut:
    """Check a registration in (again: no change); 404 for an unknown event or id, 409 unless confirmed."""
    with service_errors():
        organizer.require_event(settings.content, event_id)
        return check_in_out(organizer.check_in_by_id(session, event_id, registration_id, now))


@registrations_router.delete("/{registration_id}/checkin", response_model=RegistrationOut)
def undo_check_in(
    event_id: str, registration_id: RowId, session: SessionDep, settings: SettingsDep, now: NowDep
) -> RegistrationOut:
    """Take back a check-in (the wrong row was tapped); 404 for an unknown event or id."""
    with service_errors():
        organizer.require_event(settings.content, event_id)
        registration = organizer.undo_check_in_by_id(session, event_id, registration_id, now)
    return registration_out(registration, None)


class CancelOut(BaseModel):
    registration: RegistrationOut
    # Moved from the waitlist to the freed seat (each is sent a notice).
    promoted: list[RegistrationOut]


@registrations_router.post("/{registration_id}/cancel", response_model=CancelOut)
def cancel_registration(
    event_id: str, registration_id: RowId, session: SessionDep, settings: SettingsDep, now: NowDep
) -> CancelOut:
    """Cancel a registration for its holder; the head of the waitlist takes the freed seat and is told."""
    with service_errors():
        event = organizer.require_event(settings.content, event_id)
        change = organizer.cancel_by_id(session, event, registration_id, now)
    notify_promoted(session, event, change.promoted, settings.content)
    return CancelOut(
        registration=registration_out(change.registration, None),
        promoted=[registration_out(promoted, None) for promoted in change.promoted],
    )


class WalkInIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    phone: str = Field(min_length=1, max_length=32)


walk_ins_router = APIRouter(prefix="/events/{event_id}/walk-ins", tags=["registrations"])


@walk_ins_router.post("", status_code=status.HTTP_201_CREATED, response_model=RegistrationOut)
def add_walk_in(event_id: str, body: WalkInIn, session: SessionDep, settings: SettingsDep, now: NowDep) -> RegistrationOut:
    """Add someone who arrives unregistered, by name and phone, checked in; 409 when every seat is taken."""
    try:
        phone = parse_phone(body.phone)
    except Invalid as invalid:
        raise invalid_input("phone", body.phone, str(invalid)) from None
    with service_errors():
        event = organizer.require_event(settings.content, event_id)
        registration = organizer.walk_in(session, event, name=body.name.strip(), phone=phone, now=now)
    return registration_out(registration, None)
