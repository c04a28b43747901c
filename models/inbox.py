"""The organizers' inbox: questions the bot could not answer, kept until an organizer answers them.

Followers asking the same thing ("免费吗" from forty people) form one group, by the question's normalised
words; an organizer answers a group once and every asker gets the answer as a customer-service message
through the outbox (WeChat accepts those within 48 hours of the follower's last message; past that the
sender records the delivery as unreachable).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models import texts
from models.base import AwareDateTime, Base
from models.deliveries import enqueue_message
from models.outbox import Campaign, Delivery

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


@dataclass(frozen=True)
class QuestionGroup:
    """Open questions with the same words: the first one's id and wording, and how many asked."""

    id: int
    text: str
    words: str
    askers: int
    first_asked_at: datetime


class UnknownQuestion(LookupError):
    """No open question has that id."""


def store_question(session: Session, *, event_id: str, openid: str, text: str, words: str, now: datetime) -> None:
    """Keep a question the bot could not answer, in the caller's transaction."""
    session.add(
        InboxQuestion(
            event_id=event_id, openid=openid, text=text[:TEXT_LIMIT], words=words[:TEXT_LIMIT], asked_at=now
        )
    )


def open_groups(session: Session, event_id: str | None = None) -> list[QuestionGroup]:
    """The open questions grouped by their words, the most asked first."""
    query = (
        select(func.min(InboxQuestion.id), InboxQuestion.words, func.count(), func.min(InboxQuestion.asked_at))
        .where(InboxQuestion.status == OPEN)
        .group_by(InboxQuestion.words)
    )
    if event_id is not None:
        query = query.where(InboxQuestion.event_id == event_id)
    rows = session.execute(query).all()
    first_texts = dict(
        session.execute(select(InboxQuestion.id, InboxQuestion.text).where(InboxQuestion.id.in_([row[0] for row in rows])))
        .tuples()
        .all()
    )
    groups = [QuestionGroup(first, first_texts[first], words, askers, asked) for first, words, askers, asked in rows]
    return sorted(groups, key=lambda group: (-group.askers, group.first_asked_at))


def answer_group(session: Session, question_id: int, answer: str, now: datetime) -> list[InboxQuestion]:
    """Answer the open question ``question_id`` and every open one with the same words: each asker's
    answer is put in the outbox. The questions answered."""
    question = session.get(InboxQuestion, question_id)
    if question is None or question.status != OPEN:
        raise UnknownQuestion(question_id)
    group = list(
        session.scalars(
            select(InboxQuestion)
            .where(InboxQuestion.status == OPEN, InboxQuestion.words == question.words)
            .order_by(InboxQuestion.id)
        )
    )
    for asked in group:
        asked.status, asked.answer, asked.answered_at = ANSWERED, answer, now
        enqueue_message(
            session,
            openid=asked.openid,
            text=texts.inbox_answer(asked.text, answer),
            purpose=ANSWER_PURPOSE,
            dedup_key=asked.delivery_key,
        )
    return group


def delivery_status(session: Session, question: InboxQuestion) -> str | None:
    """What became of the answer's delivery (pending, sent, unreachable …); None before an answer."""
    return session.scalar(
        select(Delivery.status).join(Campaign, Campaign.id == Delivery.campaign_id).where(
            Campaign.dedup_key == question.delivery_key
        )
    )
