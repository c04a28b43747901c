"""``/admin/api/broadcasts``: send a message to an event's audience now (or at ``send_at``), and follow it.

A scheduled broadcast reaches its audience as it stands at ``send_at`` (someone who checks in before then
no longer gets a ``not_checked_in`` one; a late registrant gets a ``confirmed`` one).

Creating a broadcast only writes the outbox; the sender delivers it in the background. The report says
``paused`` with WeChat's error code while an account-wide error (daily quota, IP whitelist) stops sending.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field, field_validator

from bot.admin.errors import invalid_input, service_errors
from bot.admin.events import DeliveryReportOut, delivery_report_out
from bot.admin.registrations import MAX_PAGE
from bot.deps import NowDep, RowId, SessionDep, SettingsDep
from models import organizer, texts
from models.outbox import account_pause

broadcasts_router = APIRouter(prefix="/broadcasts", tags=["broadcasts"])

# WeChat's limit for a customer-service text is 2048 bytes; a Chinese character takes three.
MAX_TEXT_CHARACTERS = 600


class BroadcastIn(BaseModel):
    event_id: str
    audience: str
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARACTERS)
    # When to send; none: at once; past: refused (422). A time without offset is in the bot's timezone.
    send_at: datetime | None = None

    @field_validator("audience")
    @classmethod
    def _known_audience(cls, audience: str) -> str:
        if audience not in organizer.AUDIENCES:
            raise ValueError(texts.organizer_unknown_audience(audience))
        return audience

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError(texts.BROADCAST_TEXT_EMPTY)
        return text.strip()


class BroadcastCreated(BaseModel):
    id: int
    status: str
    recipients: int


class BroadcastCounts(BaseModel):
    sent: int
    failed: int
    unreachable: int
    pending: int


class BroadcastOut(BroadcastCreated):
    event_id: str | None
    audience: str | None
    text: str
    created_at: datetime | None
    send_at: datetime | None
    # When its last delivery finished.
    finished_at: datetime | None
    # Why a scheduled broadcast was skipped (its time passed while no scheduler ran).
    skip_reason: str | None = None
    counts: BroadcastCounts
    errors: dict[str, int]
    # Why followers could not be reached (no channel open to them), with how many each.
    unreachable_reasons: dict[str, int]
    # Delivered X of N, and who was not reached and why.
    report: DeliveryReportOut
    # Set while the sender is paused by an account-wide WeChat error.
    paused_errcode: int | None = None
    paused_reason: str | None = None


class BroadcastList(BaseModel):
    items: list[BroadcastOut]
    total: int


def broadcast_out(session, settings, campaign_id: int) -> BroadcastOut:
    return report_out(session, settings, organizer.broadcast_status(session, campaign_id))


def report_out(session, settings, report: organizer.BroadcastStatus) -> BroadcastOut:
    pause = account_pause(session, settings.wechat_app_id) if report.status == "sending" else None
    return BroadcastOut(
        id=report.campaign.id,
        status="paused" if pause else report.status,
        recipients=report.recipients,
        event_id=report.campaign.event_id,
        audience=report.campaign.audience,
        text=report.campaign.text,
        created_at=report.campaign.created_at,
        send_at=report.send_at,
        finished_at=report.finished_at,
        skip_reason=report.skip_reason,
        counts=BroadcastCounts(**report.counts),
        errors=report.errors,
        unreachable_reasons=report.unreachable_reasons,
        report=delivery_report_out(report.report),
        paused_errcode=pause.paused_errcode if pause else None,
        paused_reason=pause.paused_errmsg if pause else None,
    )


@broadcasts_router.post("", status_code=status.HTTP_201_CREATED)
def create_broadcast(body: BroadcastIn, session: SessionDep, settings: SettingsDep, now: NowDep) -> BroadcastCreated:
    """Address ``text`` to the audience as it stands now, or as it stands at ``send_at`` when that is ahead;
    sending happens in the background."""
    send_at = body.send_at
    if send_at is not None and send_at.tzinfo is None:
        send_at = send_at.replace(tzinfo=settings.tz)
    if send_at is not None and send_at <= now:
        # As the CLI's --at: a time already past is a mistake (1970 would otherwise mean "at once").
        raise invalid_input("send_at", body.send_at.isoformat(), texts.SEND_AT_PASSED)
    with service_errors():
        organizer.require_event(settings.content, body.event_id)
        campaign = organizer.create_broadcast(
            session, event_id=body.event_id, audience=body.audience, text=body.text, now=now, send_at=send_at
        )
    report = broadcast_out(session, settings, campaign.id)
    return BroadcastCreated(id=report.id, status=report.status, recipients=report.recipients)


@broadcasts_router.get("")
def list_broadcasts(
    session: SessionDep,
    settings: SettingsDep,
    event_id: str | None = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> BroadcastList:
    """The broadcasts (of ``event_id``, or all), newest first, each with its report."""
    reports, total = organizer.list_broadcasts(session, event_id, limit=page_size, offset=(page - 1) * page_size)
    return BroadcastList(items=[report_out(session, settings, report) for report in reports], total=total)


@broadcasts_router.get("/{broadcast_id}")
def get_broadcast(broadcast_id: RowId, session: SessionDep, settings: SettingsDep) -> BroadcastOut:
    """The broadcast's state and its deliveries by outcome, with WeChat's error codes counted; while it is
    scheduled, ``recipients`` is the audience's size now (the audience is fixed when it is sent)."""
    with service_errors():
        return broadcast_out(session, settings, broadcast_id)


@broadcasts_router.delete("/{broadcast_id}", status_code=status.HTTP_204_NO_CONTENT)
def cancel_broadcast(broadcast_id: RowId, session: SessionDep) -> Response:
    """Cancel a scheduled broadcast before it starts (409 once it has started); the scheduler drops its job."""
    with service_errors():
        organizer.cancel_broadcast(session, broadcast_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
