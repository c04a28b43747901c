"""Personal data in the chat: the notice and 同意 before the form's first field, 我的信息, 删除我的信息."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.devtools.simulator import WeChatSimulator, push_xml
from models import Campaign, Delivery, texts
from models.inbox import InboxQuestion
from models.organizer.notices import DIGEST_PURPOSE, REGISTRATION_NOTICE_PURPOSE, queue_daily_digest
from scheduler.sender import build_sender
from tests.conftest import BEFORE_EVENT, SHANGHAI, TOKEN
from tests.personal_data import REGISTRATION_FIELDS, holding
from tests.registration_steps import (
    form_messages,
    form_state,
    register_via_chat,
    registration_of,
    registrations,
    settings_with_event,
)

OPENID = "o-private"
NAME, PHONE, COMPANY, TITLE = "王小明", "13900001111", "星辰科技", "首席布道师"
MASKED_PHONE = "139****1111"
ADMIN_TOKEN = "privacy-admin-token"
ORGANIZER = "o-organizer"
QUESTION = "可以带同事一起来吗？"


def test_the_notice_comes_before_the_first_field(wechat):
    notice = wechat.send_text(OPENID, "报名").content

    assert "姓名、手机号、公司/单位、职位" in notice  # what
    assert "报名、签到和活动提醒" in notice and "主办方工作人员" in notice  # why, who sees it
    assert "活动结束 30 天后删除" in notice and "我的信息" in notice and "删除我的信息" in notice
    assert notice.endswith(texts.CONSENT_PROMPT) and "请回复你的姓名" not in notice
    assert "请回复你的姓名" in wechat.send_text(OPENID, "同意").content


def test_nothing_typed_before_agreeing_is_kept(wechat, app):
    wechat.send_text(OPENID, "报名")

    refused = wechat.send_text(OPENID, NAME).content

    assert refused.startswith(texts.CONSENT_NEEDED) and refused.endswith(texts.CONSENT_PROMPT)
    assert form_state(app, OPENID).state == "consent" and form_state(app, OPENID).answers == {}
    assert holding(app, NAME) == []
    assert registrations(app) == []


def test_the_notice_wording_comes_from_the_config(make_settings, make_app):
    content = make_settings().content
    privacy = content.privacy.model_copy(update={"notice": "「{event}」只收集{fields}，保存 {keep_days} 天。", "keep_days_after_event": 7})
    app = make_app(make_settings(content=content.model_copy(update={"privacy": privacy})))
    with TestClient(app) as client:
        notice = WeChatSimulator(client, TOKEN).send_text(OPENID, "报名").content
    assert "「火山引擎开发者社区 Meetup 第十期」只收集姓名、手机号、公司/单位、职位，保存 7 天。" in notice


def test_the_registration_keeps_the_notice_version_and_the_time_of_consent(wechat, app):
    register_via_chat(wechat, OPENID)

    registration = registration_of(app, OPENID)
    assert (registration.notice_version, registration.consent_at) == ("1", BEFORE_EVENT)


@pytest.mark.parametrize("words", ["我的信息", "个人信息"])
def test_my_personal_data_shows_every_stored_field_with_the_phone_masked(wechat, words):
    assert texts.NO_PERSONAL_DATA in wechat.send_text(OPENID, words).content
    register_via_chat(wechat, OPENID, name=NAME, phone=PHONE, company=COMPANY)

    mine = wechat.send_text(OPENID, words).content

    assert f"姓名：{NAME}" in mine and f"公司/单位：{COMPANY}" in mine and "职位：工程师" in mine
    assert "手机号：139****1111" in mine and PHONE not in mine
    assert "报名成功" in mine and "参加方式：现场参加" in mine and "同意告知时间：2023年3月20日（周一）10:00" in mine
    assert "最近一次发消息的时间" in mine


def test_erasing_asks_first_and_anything_but_confirm_keeps_the_data(wechat, app):
    register_via_chat(wechat, OPENID, name=NAME)

    assert wechat.send_text(OPENID, "删除我的信息").content == texts.ERASE_CONFIRM_PROMPT
    assert wechat.send_text(OPENID, "算了").content == texts.ERASE_KEPT

    assert registration_of(app, OPENID).name == NAME


def test_cancelling_a_registration_erases_its_answers_and_keeps_the_row(wechat, app):
    register_via_chat(wechat, OPENID, name=NAME, phone=PHONE)
    wechat.send_text(OPENID, "取消报名")

    assert "主办方名单中你的报名信息已删除" in wechat.send_text(OPENID, "确认").content

    [cancelled] = registrations(app)
    assert (cancelled.status, cancelled.name, cancelled.phone, cancelled.company) == ("cancelled", None, None, None)
    assert cancelled.erased_at is not None


@pytest.mark.parametrize("words", ["删除我的信息", "注销", "删除数据"])
def test_every_way_of_asking_to_erase_asks_for_confirmation(wechat, words):
    assert wechat.send_text(OPENID, words).content == texts.ERASE_CONFIRM_PROMPT


def test_after_erasure_no_table_stored_reply_or_export_holds_the_name_or_phone(
    make_settings, make_app, outbound_settings, fake_wechat, clock
):
    base = settings_with_event(make_settings, capacity=1).content
    notices = base.organizer_notices.model_copy(update={"on_registration": True, "digest_at": "09:00"})
    settings = outbound_settings.model_copy(
        update={
            "content": base.model_copy(update={"organizer_notices": notices}),
            "admin_token": ADMIN_TOKEN,
            "admin_openids_raw": ORGANIZER,
        }
    )
    app = make_app(settings)
    sessions = app.state.services.sessions
    fake_wechat.tell_follower(ORGANIZER, last_interaction_at=clock.now())
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        wechat.send_text(ORGANIZER, "管理")  # an organizer who wrote lately: the notices reach them
        register_via_chat(wechat, OPENID, name=NAME, phone=PHONE, company=COMPANY)
        clock.advance(timedelta(days=1))  # the next day's digest names only 李四, and quotes the question
        register_via_chat(wechat, "o-next", name="李四", phone="13700002222")
        app.state.services.activity.flush()  # the organizer's last message, written behind
        build_sender(settings, sessions, clock).run_until_idle()  # both notices sent
        wechat.send_text(OPENID, "我的信息")
        wechat.send_text(OPENID, QUESTION)  # kept in the organizers' inbox
        with sessions.begin() as session:  # the digest waits to be sent
            assert queue_daily_digest(session, settings.content, [ORGANIZER], clock.now())
        assert registration_of(app, "o-next").status == "waitlisted"
        with sessions() as session:
            assert session.query(InboxQuestion).filter_by(openid=OPENID).count() == 1
        assert holding(app, NAME, PHONE, COMPANY)  # the test can see them while they are there

        wechat.send_text(OPENID, "删除我的信息")
        assert wechat.send_text(OPENID, "确认").content == texts.ERASED

        assert holding(app, NAME, PHONE, MASKED_PHONE, COMPANY, QUESTION) == []
        export = client.get(
            "/admin/api/events/meetup-10/registrations.csv", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ).text
        assert NAME not in export and PHONE not in export and OPENID not in export
        assert "李四" in export
        mine = wechat.send_text(OPENID, "我的信息").content
    assert texts.NO_PERSONAL_DATA in mine
    # The row stays, anonymous and cancelled, so the counts stay right; the seat went to the next in line.
    erased = [registration for registration in registrations(app) if registration.erased_at is not None]
    assert [(row.status, row.name, row.phone, row.openid.startswith("erased-")) for row in erased] == [
        ("cancelled", None, None, True)
    ]
    assert registration_of(app, "o-next").status == "confirmed"
    with sessions() as session:
        promotion = session.query(Delivery).filter_by(openid="o-next").one()
        assert promotion.status == "pending"
        assert session.query(Delivery).filter_by(openid=OPENID).count() == 0
        # The organizer's notice about them keeps its outcome, not its words; the digest naming them is dropped.
        notices = session.execute(
            select(Campaign.text, Delivery.status).join(Delivery).where(Campaign.purpose == REGISTRATION_NOTICE_PURPOSE)
            .order_by(Campaign.id)
        ).all()
        assert tuple(notices[0]) == ("", "sent") and "李四" in notices[1].text
        assert session.query(Campaign).filter_by(purpose=DIGEST_PURPOSE).count() == 0


def test_erasure_drops_messages_not_yet_sent_to_the_follower(make_settings, make_app):
    app = make_app(settings_with_event(make_settings, capacity=1))
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        register_via_chat(wechat, "o-first")
        register_via_chat(wechat, OPENID, name=NAME)
        wechat.send_text("o-first", "取消报名")
        wechat.send_text("o-first", "确认")  # OPENID is promoted: a notice waits in the outbox
        with app.state.services.sessions() as session:
            assert session.query(Delivery).filter_by(openid=OPENID, status="pending").count() == 1

        wechat.send_text(OPENID, "删除我的信息")
        wechat.send_text(OPENID, "确认")

    with app.state.services.sessions() as session:
        assert session.query(Delivery).filter(Delivery.status == "pending").count() == 0
    assert holding(app, NAME) == []


def test_stored_replies_hold_no_personal_field_and_a_retry_gets_a_stand_in(wechat, app, clock):
    """The summary, 我的信息 and the check-in welcome go out in full; what is kept for WeChat's retries holds
    none of the fields (the registration alone does), and a retry is told what to do instead."""
    answers = [wechat.text_xml(OPENID, text) for text in form_messages(name=NAME, phone=PHONE, company=COMPANY, title=TITLE)]
    summary = [wechat.post(xml) for xml in answers][-1].content
    assert form_state(app, OPENID).last_reply == texts.FORM_SUMMARY_STAND_IN  # the form's own memory of it
    wechat.send_text(OPENID, "确认")
    asked_mine = wechat.text_xml(OPENID, "我的信息")
    mine = wechat.post(asked_mine).content
    clock.set(datetime(2023, 3, 26, 13, 40, tzinfo=SHANGHAI))
    scanned = push_xml(OPENID, "event", {"Event": "SCAN", "EventKey": "checkin:meetup-10", "Ticket": "t"}, create_time=1679809200)
    welcome = wechat.post(scanned).content
    assert all(field in summary and field in mine for field in (NAME, MASKED_PHONE, COMPANY, TITLE))
    assert welcome.startswith(f"{NAME}，签到成功")

    assert holding(app, NAME, PHONE, MASKED_PHONE, COMPANY, TITLE, besides=REGISTRATION_FIELDS) == []

    assert wechat.post(answers[-1]).content == texts.FORM_SUMMARY_STAND_IN
    assert wechat.post(asked_mine).content == texts.PERSONAL_DATA_STAND_IN
    assert wechat.post(scanned).content == welcome.removeprefix(f"{NAME}，")
    assert registration_of(app, OPENID).checked_in_at is not None
