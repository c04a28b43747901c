"""The organizers' inbox: the questions the bot could not answer, grouped, and the organizers' answers.

Followers asking the same thing ("免费吗" from forty people) form one group, by the question's normalised
words; an organizer answers a group once and every asker gets the answer as a customer-service message
through the outbox (WeChat accepts those within 48 hours of the follower's last message; past that the
sender records the delivery as unreachable).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, cast, func, literal, select
from sqlalchemy.orm import Session

from models import texts
from models.deliveries import enqueue_message
from models.inbox import ANSWER_PURPOSE, ANSWERED, OPEN, InboxQuestion
from models.organizer.registrations import NotFound
from models.outbox import Campaign, Delivery


@dataclass(frozen=True)
class QuestionGroup:
    """Open questions with the same words: the first one's id and wording, and how many asked."""

    id: int
    text: str
    words: str
    askers: int
    first_asked_at: datetime


class UnknownQuestion(NotFound):
    """No open question has that id."""


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
        .all()
    )
    groups = [QuestionGroup(first, first_texts[first], words, askers, asked) for first, words, askers, asked in rows]
    return sorted(groups, key=lambda group: (-group.askers, group.first_asked_at))


def answer_group(session: Session, question_id: int, answer: str, now: datetime) -> list[InboxQuestion]:
    """Answer the open question ``question_id`` and every open one with the same words: each asker's
    answer is put in the outbox. The questions answered."""
    question = session.get(InboxQuestion, question_id)
    if question is None or question.status != OPEN:
        raise UnknownQuestion(f"no open question {question_id}")
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


@dataclass(frozen=True)
class AnsweredQuestion:
    """An answered question and what became of the answer's delivery (pending, sent, unreachable …)."""

    question: InboxQuestion
    delivery: str | None


def answered_questions(session: Session, event_id: str | None = None, limit: int = 50) -> list[AnsweredQuestion]:
    """The latest answered questions, each with its answer's delivery status."""
    query = (
        select(InboxQuestion, Delivery.status)
        .outerjoin(Campaign, Campaign.dedup_key == literal(f"{ANSWER_PURPOSE}:") + cast(InboxQuestion.id, String))
        .outerjoin(Delivery, Delivery.campaign_id == Campaign.id)
        .where(InboxQuestion.status == ANSWERED)
        .order_by(InboxQuestion.answered_at.desc(), InboxQuestion.id.desc())
        .limit(limit)
    )
    if event_id is not None:
        query = query.where(InboxQuestion.event_id == event_id)
    return [AnsweredQuestion(question, status) for question, status in session.execute(query).all()]


def rule_toml(words: str, answer: str, event_id: str) -> str:
    """A ``[[rules]]`` block for config.toml that answers the question's ``words`` with ``answer`` from now
    on: rules live in the config file, so turning a question into a rule is pasting this and restarting.
    Organizers may shorten the keyword to its key word (停车)."""
    quoted = json.dumps  # TOML basic strings accept JSON's escapes
    return (
        f"[[rules]]\nevent = {quoted(event_id)}\nkeywords = [{quoted(words, ensure_ascii=False)}]\n"
        f"[rules.reply]\ntext = {quoted(answer, ensure_ascii=False)}\n"
    )
