"""``/admin/api/inbox``: followers' questions the bot could not answer, grouped, and the organizers' answers.

An answer goes to every follower who asked the same thing, as a customer-service message through the
outbox; the reply also carries a ``[[rules]]`` block, so the question can become a rule in config.toml.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator

from bot.admin.broadcasts import MAX_TEXT_CHARACTERS
from bot.admin.errors import service_errors
from bot.deps import NowDep, RowId, SessionDep
from models import organizer

inbox_router = APIRouter(prefix="/inbox", tags=["inbox"])


class QuestionGroupOut(BaseModel):
    id: int
    text: str
    askers: int
    first_asked_at: datetime


class AnsweredOut(BaseModel):
    id: int
    text: str
    answer: str
    answered_at: datetime
    # The delivery's status: pending, sent, failed, unreachable (no channel open: past WeChat's 48 hours).
    delivery: str | None


class InboxOut(BaseModel):
    open: list[QuestionGroupOut]
    answered: list[AnsweredOut]


class AnswerIn(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARACTERS)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is empty")
        return text.strip()


class AnswerOut(BaseModel):
    answered: int
    rule_toml: str


@inbox_router.get("")
def list_inbox(session: SessionDep) -> InboxOut:
    groups = organizer.open_groups(session)
    answered = organizer.answered_questions(session)
    return InboxOut(
        open=[QuestionGroupOut(id=g.id, text=g.text, askers=g.askers, first_asked_at=g.first_asked_at) for g in groups],
        answered=[
            AnsweredOut(
                id=item.question.id, text=item.question.text, answer=item.question.answer or "",
                answered_at=item.question.answered_at, delivery=item.delivery,
            )
            for item in answered
        ],
    )


@inbox_router.post("/{question_id}/answer")
def answer_question(question_id: RowId, body: AnswerIn, session: SessionDep, now: NowDep) -> AnswerOut:
    with service_errors():
        group = organizer.answer_group(session, question_id, body.text, now)
    first = group[0]
    return AnswerOut(answered=len(group), rule_toml=organizer.rule_toml(first.words, body.text, first.event_id))
