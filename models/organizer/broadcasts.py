"""Organizers' broadcasts: creating (now or scheduled), starting, cancelling, drafts composed in the chat,
and outcome reports to the admin who broadcast."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import texts
from models.broadcast import CANCELLED as CANCELLED_BROADCAST
from models.broadcast import SCHEDULED as SCHEDULED_BROADCAST
from models.broadcast import SKIPPED as SKIPPED_BROADCAST
from models.broadcast import STARTED as STARTED_BROADCAST
from models.broadcast import BroadcastDraft, BroadcastPlan
from models.deliveries import add_deliveries, create_campaign, enqueue_message
from models.organizer.registrations import NotFound, audience_openids, check_audience
from models.organizer.reports import DeliveryReport, delivery_report
from models.outbox import (
    FAILED,
    FINISHED_STATES,
    SENT,
    UNKNOWN,
    UNREACHABLE,
    Campaign,
    Delivery,
)

BROADCAST_PURPOSE = "broadcast"
REPORT_PURPOSE = "broadcast_report"
# A draft composed in the chat and not confirmed within this time is forgotten.
DRAFT_LIFETIME = timedelta(minutes=30)
# A scheduled broadcast whose time passed while no scheduler ran (every worker down) is still sent up to
# this late, like a reminder ([reminders] grace); later its news is likely stale, so it is skipped with
# the reason. Unlike a reminder it is not refused once the event has started or ended: organizers
# schedule broadcasts during and after an event on purpose (the wifi password, the slides).
BROADCAST_GRACE = timedelta(minutes=30)


class AlreadyStarted(Exception):
    """A broadcast that has started sending cannot be cancelled any more."""


@dataclass(frozen=True)
class BroadcastStatus:
    """A broadcast as the organizer follows it: state, schedule, and deliveries by outcome."""

    campaign: Campaign
    status: str
    send_at: datetime | None
    # Whom it addresses: while scheduled, the audience as it stands now (it is fixed at send time).
    recipients: int
    skip_reason: str | None
    counts: dict[str, int]
    errors: dict[str, int]
    # Why followers could not be reached (no channel open to them), with how many each.
    unreachable_reasons: dict[str, int]
    # Delivered X of N, and who was not reached and why.
    report: DeliveryReport
    # When its last delivery finished (None until one has).
    finished_at: datetime | None = None


def create_broadcast(
    session: Session,
    *,
    event_id: str,
    audience: str,
    text: str,
    now: datetime,
    send_at: datetime | None = None,
    report_to: str | None = None,
) -> Campaign:
    """A broadcast campaign addressed to the audience as it stands when it is sent.

    Without ``send_at`` (or with one not ahead of ``now``) that is now. With ``send_at`` ahead it is only
    scheduled: no deliveries until the scheduler starts it (``start_scheduled_broadcast``), and it can be
    cancelled until then. ``report_to`` is an admin's openid to send the outcome to once every delivery
    is finished.
    """
    check_audience(audience)
    scheduled = send_at is not None and send_at > now
    campaign = create_campaign(
        session,
        openids=() if scheduled else audience_openids(session, event_id, audience),
        text=text,
        purpose=BROADCAST_PURPOSE,
        event_id=event_id,
        audience=audience,
        # [delivery.templates] broadcast: a template message reaches followers outside the 48-hour window.
        template_key=BROADCAST_PURPOSE,
    )
    if scheduled or report_to:
        state = SCHEDULED_BROADCAST if scheduled else STARTED_BROADCAST
        session.add(
            BroadcastPlan(
                campaign_id=campaign.id, state=state, send_at=send_at if scheduled else None, report_to=report_to
            )
        )
    session.flush()
    return campaign


def _broadcast(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.purpose != BROADCAST_PURPOSE:
        raise NotFound(texts.organizer_unknown_broadcast(campaign_id))
    return campaign


def cancel_broadcast(session: Session, campaign_id: int) -> None:
    """Cancel a scheduled broadcast that has not started: it never gets deliveries, so nobody gets it.

    NotFound for an unknown broadcast; AlreadyStarted once it has started (or was cancelled or skipped).
    The scheduler drops its job at its next sweep; a job that fires first finds nothing to start.
    """
    _broadcast(session, campaign_id)
    # Locked, so a scheduler starting it at this moment either waits for the cancel or is waited for.
    plan = session.get(BroadcastPlan, campaign_id, with_for_update=True)
    if plan is None or plan.state != SCHEDULED_BROADCAST:
        raise AlreadyStarted(texts.organizer_broadcast_started(campaign_id))
    plan.state = CANCELLED_BROADCAST


def start_scheduled_broadcast(session: Session, campaign_id: int, now: datetime) -> BroadcastPlan | None:
    """Start the scheduled broadcast ``campaign_id`` if its time has come: one delivery per follower in its
    audience as it is at ``now``, or skipped with the reason when ``now`` is beyond ``BROADCAST_GRACE``.

    None when there is nothing to start (not a scheduled broadcast, cancelled, started or skipped already,
    or not due yet), so a second call, from a retried job or another process, changes nothing.
    """
    # The lock makes a concurrent starter (PostgreSQL) wait and then read the state this one wrote;
    # SQLite's BEGIN IMMEDIATE serialises the two anyway.
    plan = session.get(BroadcastPlan, campaign_id, with_for_update=True, populate_existing=True)
    if plan is None or plan.state != SCHEDULED_BROADCAST or plan.send_at > now:
        return None
    late = now - plan.send_at
    if late > BROADCAST_GRACE:
        plan.state = SKIPPED_BROADCAST
        plan.skip_reason = texts.skipped_late(_minutes(late), _minutes(BROADCAST_GRACE))
        return plan
    campaign = session.get(Campaign, campaign_id)
    audience = audience_openids(session, campaign.event_id, campaign.audience)
    campaign.recipients = add_deliveries(session, campaign, audience)
    plan.state = STARTED_BROADCAST
    return plan


def start_due_broadcasts(session: Session, now: datetime) -> list[BroadcastPlan]:
    """Start (or skip) every scheduled broadcast whose time has come; the plans decided by this call."""
    due = session.scalars(
        select(BroadcastPlan.campaign_id)
        .where(BroadcastPlan.state == SCHEDULED_BROADCAST, BroadcastPlan.send_at <= now)
        .order_by(BroadcastPlan.campaign_id)
    ).all()
    decided = (start_scheduled_broadcast(session, campaign_id, now) for campaign_id in due)
    return [plan for plan in decided if plan is not None]


def scheduled_broadcasts(session: Session) -> dict[int, datetime]:
    """The broadcasts waiting to be started, with their times."""
    rows = session.execute(
        select(BroadcastPlan.campaign_id, BroadcastPlan.send_at).where(BroadcastPlan.state == SCHEDULED_BROADCAST)
    )
    return dict(rows.all())


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def outcome_counts(by_status: dict[str, int]) -> dict[str, int]:
    """Delivery rows by outbox status, folded into what an organizer reads: sent, failed, unreachable, pending."""
    # "unknown" is a send that may or may not have reached WeChat: finished, and not known to be sent.
    return {
        "sent": by_status.get(SENT, 0),
        "failed": by_status.get(FAILED, 0) + by_status.get(UNKNOWN, 0),
        "unreachable": by_status.get(UNREACHABLE, 0),
        "pending": sum(count for state, count in by_status.items() if state not in FINISHED_STATES),
    }


def broadcast_status(session: Session, campaign_id: int) -> BroadcastStatus:
    """The broadcast's state (scheduled, cancelled, skipped, sending, sent) and its deliveries by outcome."""
    campaign = _broadcast(session, campaign_id)
    plan = session.get(BroadcastPlan, campaign_id)
    by_status = dict(
        session.execute(
            select(Delivery.status, func.count()).where(Delivery.campaign_id == campaign_id).group_by(Delivery.status)
        ).all()
    )
    errors = session.execute(
        select(Delivery.errcode, func.count())
        .where(Delivery.campaign_id == campaign_id, Delivery.status.in_(FINISHED_STATES), Delivery.errcode.is_not(None))
        .group_by(Delivery.errcode)
    ).all()
    unreachable = session.execute(
        select(Delivery.errmsg, func.count())
        .where(Delivery.campaign_id == campaign_id, Delivery.status == UNREACHABLE)
        .group_by(Delivery.errmsg)
    ).all()
    counts = outcome_counts(by_status)
    recipients = campaign.recipients
    if plan is not None and plan.state != STARTED_BROADCAST:
        status = plan.state  # scheduled, cancelled or skipped: it has no deliveries
        if plan.state == SCHEDULED_BROADCAST:
            recipients = len(audience_openids(session, campaign.event_id, campaign.audience))
    else:
        status = "sending" if counts["pending"] else "sent"
    return BroadcastStatus(
        campaign,
        status,
        plan.send_at if plan else None,
        recipients,
        plan.skip_reason if plan else None,
        counts,
        {str(code): count for code, count in errors},
        {reason or "": count for reason, count in unreachable},
        delivery_report(session, [campaign_id], campaign.event_id),
        session.scalar(select(func.max(Delivery.finished_at)).where(Delivery.campaign_id == campaign_id)),
    )


def list_broadcasts(
    session: Session, event_id: str | None = None, *, limit: int | None = None, offset: int = 0
) -> tuple[list[BroadcastStatus], int]:
    """Broadcasts (of ``event_id``, or all), newest first, each with its report; and how many there are."""
    query = select(Campaign.id).where(Campaign.purpose == BROADCAST_PURPOSE)
    if event_id is not None:
        query = query.where(Campaign.event_id == event_id)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    ids = session.scalars(query.order_by(Campaign.id.desc()).offset(offset).limit(limit)).all()
    return [broadcast_status(session, campaign_id) for campaign_id in ids], total


def save_draft(session: Session, *, openid: str, event_id: str, audience: str, text: str, now: datetime) -> int:
    """Keep an admin's broadcast until they confirm it (replacing an earlier draft); the audience size."""
    check_audience(audience)
    draft = session.get(BroadcastDraft, openid)
    if draft is None:
        draft = BroadcastDraft(openid=openid)
        session.add(draft)
    draft.event_id, draft.audience, draft.text, draft.created_at = event_id, audience, text, now
    session.flush()
    return len(audience_openids(session, event_id, audience))


def confirm_draft(session: Session, openid: str, now: datetime) -> Campaign | None:
    """Send the admin's pending draft, reporting the outcome to them later; None when there is none."""
    draft = take_draft(session, openid, now)
    if draft is None:
        return None
    return create_broadcast(
        session, event_id=draft.event_id, audience=draft.audience, text=draft.text, now=now, report_to=openid
    )


def take_draft(session: Session, openid: str, now: datetime) -> BroadcastDraft | None:
    """Remove and return the admin's draft if one is pending and not expired."""
    draft = session.get(BroadcastDraft, openid)
    if draft is None:
        return None
    session.delete(draft)
    session.flush()
    return draft if now - draft.created_at < DRAFT_LIFETIME else None


def report_finished_broadcasts(session: Session, now: datetime) -> list[int]:
    """Queue the outcome of each finished broadcast to the admin who started it; the broadcasts reported.

    The outbox key makes a second report impossible even if two processes get here at once.
    """
    plans = session.scalars(
        select(BroadcastPlan).where(
            BroadcastPlan.state == STARTED_BROADCAST,
            BroadcastPlan.report_to.is_not(None),
            BroadcastPlan.reported_at.is_(None),
        )
    ).all()
    reported = []
    for plan in plans:
        status = broadcast_status(session, plan.campaign_id)
        if status.status != "sent":
            continue
        enqueue_message(
            session,
            openid=plan.report_to,
            text=texts.admin_broadcast_report(status.campaign.id, status.report),
            purpose=REPORT_PURPOSE,
            dedup_key=f"{REPORT_PURPOSE}:{plan.campaign_id}",
            event_id=status.campaign.event_id,
        )
        plan.reported_at = now
        reported.append(plan.campaign_id)
    return reported
