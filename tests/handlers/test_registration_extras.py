"""The form's extras (issue 20), through the webhook on the real database: a full room said before the first
question, a phone already registered by someone else flagged, the last answers offered again after 取消报名,
and a lone Latin letter taken as a name only once confirmed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.devtools.simulator import WeChatSimulator
from models import texts
from models.kept_answers import KeptAnswers
from models.privacy import registrations_of
from models.retention import prune_operational_state
from tests.conftest import TOKEN
from tests.personal_data import holding
from tests.registration_steps import (
    form_state,
    register_via_chat,
    registration_of,
    settings_with_event,
    start_form,
)

OPENID = "o-extra"
NAME, PHONE, COMPANY = "王小明", "13900001111", "星辰科技"
MASKED = "139****1111"


@pytest.fixture
def full_room(make_settings, make_app):
    """An app whose event (on site and online) has one seat, which someone else took; and a chat with it."""
    app = make_app(settings_with_event(make_settings, capacity=1))
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        register_via_chat(wechat, "o-seated")
        yield app, wechat


def fields(wechat: WeChatSimulator, openid: str = OPENID) -> str:
    """Answer name, phone, company and title; the reply to the last."""
    for text in (NAME, PHONE, COMPANY):
        wechat.send_text(openid, text)
    return wechat.send_text(openid, "工程师").content


# A full room, said before anything is asked.

def test_a_full_room_is_said_before_anything_is_asked_and_online_needs_no_seat(full_room):
    full_app, full_wechat = full_room
    opened = full_wechat.send_text(OPENID, "报名").content

    assert "现场名额已满" in opened and "「线上」" in opened and "「候补」" in opened
    assert texts.CONSENT_PROMPT not in opened and "姓名" not in opened
    assert texts.CONSENT_PROMPT in full_wechat.send_text(OPENID, "线上").content
    assert "请回复你的姓名" in full_wechat.send_text(OPENID, "同意").content
    summary = fields(full_wechat)  # no question about attendance: it was chosen first
    assert summary.startswith("请核对报名信息") and "参加方式：线上观看直播" in summary

    done = full_wechat.send_text(OPENID, "确认").content

    assert "报名成功" in done
    registration = registration_of(full_app, OPENID)
    assert (registration.status, registration.attendance) == ("confirmed", "online")


def test_choosing_the_waitlist_in_a_full_room_waits_for_a_seat(full_room):
    full_app, full_wechat = full_room
    full_wechat.send_text(OPENID, "报名")
    full_wechat.send_text(OPENID, "候补")
    full_wechat.send_text(OPENID, "同意")
    summary = fields(full_wechat)

    assert "参加方式：现场参加（候补）" in summary
    assert "已进入候补名单" in full_wechat.send_text(OPENID, "确认").content
    registration = registration_of(full_app, OPENID)
    assert (registration.status, registration.attendance, registration.position) == ("waitlisted", "onsite", 1)


def test_a_full_room_asks_again_for_online_or_the_waitlist(full_room):
    _, full_wechat = full_room
    full_wechat.send_text(OPENID, "报名")
    refused = full_wechat.send_text(OPENID, "随便").content
    assert refused.startswith(texts.ONSITE_FULL_INVALID) and "现场名额已满" in refused


def test_a_full_room_without_a_livestream_says_registering_means_waiting(make_settings, make_app):
    app = make_app(settings_with_event(make_settings, capacity=1, format="线下"))
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        register_via_chat(wechat, "o-seated")
        opened = wechat.send_text(OPENID, "报名").content
    assert "现场名额已满" in opened and "候补" in opened and "「线上」" not in opened
    assert opened.endswith(texts.CONSENT_PROMPT)


def test_a_room_with_seats_left_says_nothing_of_it(wechat):
    opened = wechat.send_text(OPENID, "报名").content
    assert "名额" not in opened and opened.endswith(texts.CONSENT_PROMPT)


# A phone someone else registered with.

def test_a_phone_registered_by_someone_else_is_flagged_without_naming_them_and_still_registers(wechat, app):
    register_via_chat(wechat, "o-first", name="李四", phone=PHONE)
    start_form(wechat, OPENID)
    wechat.send_text(OPENID, NAME)

    flagged = wechat.send_text(OPENID, PHONE).content

    assert flagged.startswith(texts.PHONE_SHARED) and flagged.endswith(texts.FIELD_PROMPTS["company"])
    assert "李四" not in flagged
    for text in (COMPANY, "工程师", "现场"):
        wechat.send_text(OPENID, text)
    assert "报名成功" in wechat.send_text(OPENID, "确认").content
    assert registration_of(app, OPENID).phone == registration_of(app, "o-first").phone == PHONE


def test_a_phone_of_a_cancelled_registration_is_not_flagged(wechat):
    register_via_chat(wechat, "o-first", phone=PHONE)
    wechat.send_text("o-first", "取消报名")
    wechat.send_text("o-first", "确认")
    start_form(wechat, OPENID)
    wechat.send_text(OPENID, NAME)

    assert wechat.send_text(OPENID, PHONE).content == texts.FIELD_PROMPTS["company"]


# The last answers, offered again after 取消报名.

def register_then_cancel(wechat: WeChatSimulator) -> None:
    register_via_chat(wechat, OPENID, name=NAME, phone=PHONE, company=COMPANY)
    wechat.send_text(OPENID, "取消报名")
    wechat.send_text(OPENID, "确认")


def test_registering_again_after_cancelling_offers_the_last_answers_masked(wechat, app):
    register_then_cancel(wechat)
    first = registrations_of_follower(app)[0]

    offer = wechat.send_text(OPENID, "报名").content

    assert texts.REUSE_PROMPT in offer and f"姓名：{NAME}" in offer and f"手机号：{MASKED}" in offer
    assert PHONE not in offer and texts.CONSENT_PROMPT not in offer
    assert "请问你如何参加" in wechat.send_text(OPENID, "是").content
    summary = wechat.send_text(OPENID, "线上").content
    assert f"姓名：{NAME}" in summary and f"公司/单位：{COMPANY}" in summary
    assert "报名成功" in wechat.send_text(OPENID, "确认").content
    again = registration_of(app, OPENID)
    assert (again.name, again.phone, again.company, again.attendance) == (NAME, PHONE, COMPANY, "online")
    assert (again.notice_version, again.consent_at) == (first.notice_version, first.consent_at)


def test_a_retry_of_the_offer_gets_a_stand_in_without_the_answers(wechat, app):
    register_then_cancel(wechat)
    asked = wechat.text_xml(OPENID, "报名")

    assert NAME in wechat.post(asked).content
    assert wechat.post(asked).content == texts.REUSE_STAND_IN
    assert form_state(app, OPENID).last_reply == texts.REUSE_STAND_IN


def test_declining_the_last_answers_asks_every_field(wechat, app):
    register_then_cancel(wechat)
    wechat.send_text(OPENID, "报名")

    assert "请回复你的姓名" in wechat.send_text(OPENID, "否").content  # the notice agreed to still holds
    for text in ("李雷", "13700002222", "新公司", "工程师", "现场", "确认"):
        wechat.send_text(OPENID, text)
    again = registration_of(app, OPENID)
    assert (again.name, again.phone, again.company) == ("李雷", "13700002222", "新公司")


def test_the_last_answers_are_offered_once(wechat):
    register_then_cancel(wechat)
    wechat.send_text(OPENID, "报名")
    wechat.send_text(OPENID, "否")
    wechat.send_text(OPENID, "取消")

    assert texts.REUSE_PROMPT not in wechat.send_text(OPENID, "报名").content


def test_a_changed_notice_is_agreed_to_again_before_the_last_answers_are_used(make_settings, make_app):
    settings = make_settings()
    app = make_app(settings)
    with TestClient(app) as client:
        register_then_cancel(WeChatSimulator(client, TOKEN))
    content = settings.content
    changed = content.model_copy(update={"privacy": content.privacy.model_copy(update={"notice_version": "2"})})
    app = make_app(settings.model_copy(update={"content": changed}))
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        wechat.send_text(OPENID, "报名")
        assert texts.CONSENT_PROMPT in wechat.send_text(OPENID, "是").content
        assert "请问你如何参加" in wechat.send_text(OPENID, "同意").content
        wechat.send_text(OPENID, "现场")
        wechat.send_text(OPENID, "确认")
    assert registration_of(app, OPENID).notice_version == "2"


def test_the_cancel_reply_and_my_personal_data_say_what_is_kept_for_registering_again(wechat):
    register_via_chat(wechat, OPENID, name=NAME, phone=PHONE, company=COMPANY)
    wechat.send_text(OPENID, "取消报名")

    cancelled = wechat.send_text(OPENID, "确认").content
    mine = wechat.send_text(OPENID, "我的信息").content

    assert "回复「报名」" in cancelled and "删除我的信息" in cancelled
    assert texts.KEPT_FOR_REUSE in mine and f"姓名：{NAME}" in mine and f"手机号：{MASKED}" in mine


def test_nothing_is_offered_after_the_follower_erased_their_data(wechat, app):
    register_then_cancel(wechat)
    wechat.send_text(OPENID, "删除我的信息")
    wechat.send_text(OPENID, "确认")

    assert holding(app, NAME, PHONE, COMPANY) == []
    opened = wechat.send_text(OPENID, "报名").content
    assert texts.REUSE_PROMPT not in opened and opened.endswith(texts.CONSENT_PROMPT)


def test_declining_to_erase_keeps_what_is_kept_for_registering_again(wechat):
    register_then_cancel(wechat)
    wechat.send_text(OPENID, "删除我的信息")
    assert wechat.send_text(OPENID, "不了").content == texts.ERASE_KEPT

    assert texts.REUSE_PROMPT in wechat.send_text(OPENID, "报名").content


def test_the_last_answers_are_forgotten_when_registration_closes(wechat, app, clock):
    register_then_cancel(wechat)
    event = app.state.services.settings.content.events[0]
    clock.set(event.registration_deadline - timedelta(minutes=1))
    prune_operational_state(app.state.services.sessions, clock.now())
    assert [row.answers["name"] for row in kept_answers(app)] == [NAME]

    clock.set(event.registration_deadline)
    prune_operational_state(app.state.services.sessions, clock.now())

    assert kept_answers(app) == []


def test_after_registration_closed_a_cancellation_keeps_nothing_and_promises_nothing(make_settings, make_app, clock):
    app = make_app(settings_with_event(make_settings, registration_closes_at=clock.now() + timedelta(days=1)))
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        register_via_chat(wechat, OPENID, name=NAME, phone=PHONE)
        clock.advance(timedelta(days=2))  # registration closed, the event not yet started
        wechat.send_text(OPENID, "取消报名")

        cancelled = wechat.send_text(OPENID, "确认").content

    assert cancelled == texts.registration_cancelled(app.state.services.settings.content.events[0], kept=False)
    assert "回复「报名」" not in cancelled
    assert kept_answers(app) == []


def registrations_of_follower(app):
    with app.state.services.sessions() as session:
        return registrations_of(session, OPENID)


def kept_answers(app) -> list[KeptAnswers]:
    with app.state.services.sessions() as session:
        return list(session.scalars(select(KeptAnswers)))


# A lone Latin letter as a name.

def test_a_lone_letter_as_a_name_is_taken_once_confirmed(wechat, app):
    start_form(wechat, OPENID)

    assert wechat.send_text(OPENID, "A").content == texts.name_confirmation("A")
    assert "请回复你的手机号" in wechat.send_text(OPENID, "是").content
    for text in (PHONE, COMPANY, "工程师", "现场", "确认"):
        wechat.send_text(OPENID, text)
    assert registration_of(app, OPENID).name == "A"


def test_a_retry_of_the_name_confirmation_does_not_quote_the_name(wechat, app):
    start_form(wechat, OPENID)
    typed = wechat.text_xml(OPENID, "Z")

    assert wechat.post(typed).content == texts.name_confirmation("Z")
    assert wechat.post(typed).content == texts.NAME_CONFIRM_STAND_IN
    assert "Z" not in form_state(app, OPENID).last_reply


def test_another_name_instead_of_confirming_the_letter_is_taken(wechat, app):
    start_form(wechat, OPENID)
    wechat.send_text(OPENID, "a")

    assert "请回复你的手机号" in wechat.send_text(OPENID, "Li Lei").content
    assert "姓名：Li Lei" in fields_after_name(wechat)


def fields_after_name(wechat: WeChatSimulator) -> str:
    for text in (PHONE, COMPANY, "工程师"):
        wechat.send_text(OPENID, text)
    return wechat.send_text(OPENID, "现场").content
