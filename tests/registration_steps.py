"""Helpers for the registration tests: filling the form through the webhook, and reading what it stored."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from sqlalchemy import select

from bot.devtools.simulator import Reply, WeChatSimulator
from bot.settings import Settings
from models import Registration, texts
from models.form_store import Form

EVENT_ID = "meetup-10"
ANSWERS = {"consent": "同意", "name": "张三", "phone": "138 1234 5678", "company": "火山引擎", "title": "工程师", "attendance": "现场"}
FORM_ORDER = ("consent", "name", "phone", "company", "title", "attendance")


def form_messages(**answers: str) -> list[str]:
    """What a follower types to reach the confirmation step: 报名, 同意 to the privacy notice, then every
    answer in order."""
    values = ANSWERS | answers
    return ["报名", *(values[field] for field in FORM_ORDER)]


def start_form(wechat: WeChatSimulator, openid: str) -> Reply:
    """报名, then 同意 to the privacy notice; the reply asks the first field."""
    wechat.send_text(openid, "报名")
    return wechat.send_text(openid, "同意")


def fill_form(wechat: WeChatSimulator, openid: str, **answers: str) -> Reply:
    """Start the form and answer every question; the reply is the summary awaiting 确认. When the seats are
    taken, how to attend comes first (现场 then means the waitlist); the last answers offered again after a
    cancellation are declined, so every field is typed."""
    values = ANSWERS | answers
    asked = list(FORM_ORDER)
    reply = wechat.send_text(openid, "报名")
    if texts.ONSITE_FULL_PROMPT in reply.content:
        reply = wechat.send_text(openid, values["attendance"])
        asked.remove("attendance")
    if texts.REUSE_PROMPT in reply.content:
        reply = wechat.send_text(openid, "否")
        if texts.CONSENT_PROMPT not in reply.content:  # the notice agreed to before still holds
            asked.remove("consent")
    for field in asked:
        reply = wechat.send_text(openid, values[field])
    return reply


def register_via_chat(wechat: WeChatSimulator, openid: str, **answers: str) -> Reply:
    fill_form(wechat, openid, **answers)
    return wechat.send_text(openid, "确认")


def registrations(app: FastAPI, event_id: str = EVENT_ID) -> list[Registration]:
    """Every registration of the event, oldest first, as committed."""
    with app.state.services.sessions() as session:
        return list(session.scalars(select(Registration).where(Registration.event_id == event_id).order_by(Registration.id)))


def registration_of(app: FastAPI, openid: str) -> Registration | None:
    """The follower's registration that is not cancelled, if any."""
    return next((r for r in registrations(app) if r.openid == openid and r.status != "cancelled"), None)


def form_state(app: FastAPI, openid: str) -> Form | None:
    """The follower's form progress as kept (a row on SQLite, a Redis value with Redis)."""
    return app.state.services.forms.peek(openid)


def settings_with_event(make_settings: Callable[..., Settings], **changes) -> Settings:
    """Settings whose (only) event differs from config.toml's by ``changes`` (capacity, walk_in …)."""
    content = make_settings().content
    event = content.events[0].model_copy(update=changes)
    return make_settings(content=content.model_copy(update={"events": [event]}))


def settings_with_bot(make_settings: Callable[..., Settings], **changes) -> Settings:
    """Settings whose ``[bot]`` section differs from config.toml's by ``changes``."""
    content = make_settings().content
    return make_settings(content=content.model_copy(update={"bot": content.bot.model_copy(update=changes)}))
