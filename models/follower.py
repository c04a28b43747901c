"""Followers: who has talked to the account, from which QR channel, and when last (WeChat's 48-hour window)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import AwareDateTime, Base


class Follower(Base):
    __tablename__ = "followers"

    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str | None] = mapped_column(String(64))
    subscribed: Mapped[bool] = mapped_column(default=True)
    first_seen_at: Mapped[datetime] = mapped_column(AwareDateTime())
    last_interaction_at: Mapped[datetime] = mapped_column(AwareDateTime())
    # The numbered list the follower saw last ("help" or "agenda"), so a bare "2" answers that list.
    last_list: Mapped[str | None] = mapped_column(String(16))
    # When text nothing answered last got the default reply: it is sent at most once per interval.
    default_reply_at: Mapped[datetime | None] = mapped_column(AwareDateTime())


def get_or_create_follower(session: Session, openid: str, now: datetime) -> Follower:
    """The follower row for ``openid``, created on first contact."""
    follower = session.get(Follower, openid)
    if follower is None:
        follower = Follower(openid=openid, first_seen_at=now, last_interaction_at=now)
        session.add(follower)
    return follower

