"""A follower's own answers, kept after 取消报名 so that their next 报名 for the event can use them again.

Cancelling erases the registration's personal fields, so organizers no longer see them. The follower's
copy lives apart, in a table no organizer view, export or notice reads, until registration for the event
closes: the next 报名 takes it (it is offered once), 删除我的信息 erases it (``models.privacy``), and the
retention job deletes it once expired (``models.retention``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String, delete
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import AwareDateTime, Base
from models.registration import FIELD_COLUMNS, Registration

# Beside the fields: the privacy notice the follower agreed to, and when (ISO), so consent can carry over.
NOTICE_VERSION = "notice_version"
CONSENT_AT = "consent_at"


class KeptAnswers(Base):
    """One follower's answers from their last cancelled registration (one set per follower, the latest)."""

    __tablename__ = "kept_answers"

    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64))
    answers: Mapped[dict] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(AwareDateTime(), index=True)


def keep_answers(session: Session, registration: Registration, until: datetime) -> bool:
    """Keep the registration's answers for its follower until ``until``, replacing any kept before; False
    (nothing kept) when there is nothing to keep."""
    fields = {name: value for name in FIELD_COLUMNS if (value := getattr(registration, name))}
    if not fields:
        return False
    consent_at = registration.consent_at.isoformat() if registration.consent_at else None
    answers = {**fields, NOTICE_VERSION: registration.notice_version, CONSENT_AT: consent_at}
    session.merge(KeptAnswers(openid=registration.openid, event_id=registration.event_id, answers=answers, expires_at=until))
    return True


def kept_answers(session: Session, openid: str, now: datetime) -> KeptAnswers | None:
    """What is kept for the follower and not yet expired (for 我的信息), if anything."""
    kept = session.get(KeptAnswers, openid)
    return kept if kept is not None and now < kept.expires_at else None


def take_kept_answers(session: Session, openid: str, event_id: str, now: datetime) -> dict | None:
    """The answers kept for the follower's 报名 of ``event_id``, removed from the table: they are offered once."""
    kept = kept_answers(session, openid, now)
    if kept is None or kept.event_id != event_id:
        return None
    session.delete(kept)
    return kept.answers


def forget_kept_answers(session: Session, openid: str) -> None:
    session.execute(delete(KeptAnswers).where(KeptAnswers.openid == openid))
