"""The organizers' inbox: questions the bot could not answer, kept until an organizer answers them
(``models.organizer.inbox`` lists and answers them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import AwareDateTime, Base

OPEN = "open"
ANSWERED = "answered"
ANSWER_PURPOSE = "inbox_answer"
TEXT_LIMIT = 500


class InboxQuestion(Base):
    """One follower's unanswered question, and the organizers' answer once given."""

    __tablename__ = "inbox_questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(String(TEXT_LIMIT))
    # The normalised words: the same question typed differently groups with the others.
    words: Mapped[str] = mapped_column(String(TEXT_LIMIT), index=True)
    status: Mapped[str] = mapped_column(String(16), default=OPEN, index=True)
    asked_at: Mapped[datetime] = mapped_column(AwareDateTime())
    answer: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(AwareDateTime())

    @property
    def delivery_key(self) -> str:
        return f"{ANSWER_PURPOSE}:{self.id}"


def store_question(session: Session, *, event_id: str, openid: str, text: str, words: str, now: datetime) -> None:
    """Keep a question the bot could not answer, in the caller's transaction."""
    session.add(
        InboxQuestion(
            event_id=event_id, openid=openid, text=text[:TEXT_LIMIT], words=words[:TEXT_LIMIT], asked_at=now
        )
    )
