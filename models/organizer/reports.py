"""What became of a message sent to many (a broadcast, a reminder): delivered X of N, and who was not
reached and why, in the words an organizer reads (``models.texts``), with each person's name."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import texts
from models.outbox import FAILED, FINISHED_STATES, SENT, UNKNOWN, UNREACHABLE, Delivery
from models.registration import Registration


@dataclass(frozen=True)
class Missed:
    """Someone a message did not reach, and why (Chinese, for organizers)."""

    openid: str
    name: str | None
    reason: str


@dataclass(frozen=True)
class DeliveryReport:
    """Deliveries of one or more campaigns: how many were addressed, delivered, still pending, and who was missed."""

    recipients: int
    delivered: int
    pending: int
    missed: list[Missed] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """pending while anything is left to send; then delivered (everyone), partly, or none."""
        if self.pending:
            return "pending"
        if self.recipients and self.delivered == self.recipients:
            return "delivered"
        return "partly" if self.delivered else "none"

    @property
    def reasons(self) -> dict[str, int]:
        """How many were missed for each reason, most frequent first."""
        return dict(Counter(missed.reason for missed in self.missed).most_common())

    def summary(self) -> str:
        return texts.delivery_summary(self)


def miss_reason(status: str, errcode: int | None, errmsg: str | None) -> str | None:
    """Why a finished delivery did not reach its follower; None when it was delivered or is not finished."""
    if status == UNREACHABLE:
        return errmsg or texts.REACH_NO_CHANNEL
    if status == FAILED:
        return texts.wechat_error_reason(errcode)
    if status == UNKNOWN:
        return texts.REACH_UNKNOWN
    return None


def delivery_report(session: Session, campaign_ids: Iterable[int], event_id: str | None) -> DeliveryReport:
    """The report over every delivery of ``campaign_ids``; names come from the event's registrations."""
    ids = list(campaign_ids)
    rows = session.execute(
        select(Delivery.openid, Delivery.status, Delivery.errcode, Delivery.errmsg)
        .where(Delivery.campaign_id.in_(ids))
        .order_by(Delivery.id)
    ).all()
    delivered = sum(1 for row in rows if row.status == SENT)
    pending = sum(1 for row in rows if row.status not in FINISHED_STATES)
    missed = [(row.openid, reason) for row in rows if (reason := miss_reason(row.status, row.errcode, row.errmsg))]
    names: dict[str, str | None] = {}
    if missed and event_id is not None:
        # The latest registration's name: someone who cancelled and registered again is named as now.
        names = dict(
            session.execute(
                select(Registration.openid, Registration.name)
                .where(Registration.event_id == event_id, Registration.openid.in_([openid for openid, _ in missed]))
                .order_by(Registration.id)
            ).all()
        )
    return DeliveryReport(
        recipients=len(rows),
        delivered=delivered,
        pending=pending,
        missed=[Missed(openid, names.get(openid), reason) for openid, reason in missed],
    )
