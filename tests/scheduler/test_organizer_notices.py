"""Organizers hear without asking: a notice on each registration (when configured) and a daily digest at
its time, both as outbox messages the sender delivers to the admin openids through the fake WeChat API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.devtools.simulator import WeChatSimulator
from models import Campaign, texts
from models.inbox import store_question
from models.organizer.notices import DIGEST_PURPOSE, REGISTRATION_NOTICE_PURPOSE
from scheduler.jobs import JobQueue, sweep_job
from scheduler.sender import build_sender
from tests.conftest import TOKEN
from tests.organizer_factories import add_registration
from tests.registration_steps import register_via_chat

ORGANIZERS = ("o-organizer-1", "o-organizer-2")


def app_with_notices(make_app, outbound_settings, **notices):
    content = outbound_settings.content
    content = content.model_copy(
        update={"organizer_notices": content.organizer_notices.model_copy(update=notices)}
    )
    return make_app(outbound_settings.model_copy(update={"content": content, "admin_openids_raw": ",".join(ORGANIZERS)}))


def texts_of(app, purpose: str) -> list[str]:
    with app.state.services.sessions() as session:
        return session.scalars(select(Campaign.text).where(Campaign.purpose == purpose).order_by(Campaign.id)).all()


def sweep(app, clock) -> None:
    queue = JobQueue(app.state.services.settings, app.state.services.engine, clock)
    queue.start(paused=True)
    try:
        sweep_job(queue.services)
    finally:
        queue.shutdown()


@pytest.mark.parametrize("on_registration", [True, False])
def test_each_registration_is_told_to_every_organizer_when_configured(
    make_app, outbound_settings, fake_wechat, clock, on_registration
):
    app = app_with_notices(make_app, outbound_settings, on_registration=on_registration)
    for openid in ORGANIZERS:
        fake_wechat.tell_follower(openid, last_interaction_at=clock.now())
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        for openid in ORGANIZERS:  # organizers who wrote lately: a customer-service message reaches them
            wechat.send_text(openid, "管理")
        register_via_chat(wechat, "o-alice", name="王小丽", company="字节跳动")
    build_sender(outbound_settings, app.state.services.sessions, clock).run_until_idle()
    received = sorted(
        (message["touser"], message["body"]["text"]["content"])
        for message in fake_wechat.messages()
        if message["touser"] in ORGANIZERS
    )
    notice = "新报名「火山引擎开发者社区 Meetup 第十期」：王小丽（字节跳动），现场，已确认。"
    assert received == ([(openid, notice) for openid in ORGANIZERS] if on_registration else [])
    assert len(texts_of(app, REGISTRATION_NOTICE_PURPOSE)) == (2 if on_registration else 0)


def test_a_registration_with_a_phone_someone_else_registered_is_flagged_to_organizers(make_app, outbound_settings):
    app = app_with_notices(make_app, outbound_settings, on_registration=True)
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        register_via_chat(wechat, "o-alice", name="王小丽", phone="13900001111")
        register_via_chat(wechat, "o-bob", name="李四", phone="13900001111")

    alice, _, bob, _ = texts_of(app, REGISTRATION_NOTICE_PURPOSE)  # one per organizer
    assert texts.ORGANIZER_PHONE_SHARED not in alice
    assert bob == f"新报名「火山引擎开发者社区 Meetup 第十期」：李四（火山引擎），现场，已确认。{texts.ORGANIZER_PHONE_SHARED}"


def test_the_daily_digest_goes_once_a_day_after_its_time(make_app, outbound_settings, fake_wechat, clock):
    app = app_with_notices(make_app, outbound_settings, digest_at="21:00")
    with app.state.services.sessions.begin() as session:
        add_registration(session, "o-old", now=clock.now() - timedelta(days=2), name="老朋友")
        add_registration(session, "o-alice", now=clock.now(), name="王小丽")
        add_registration(session, "o-olivia", now=clock.now(), name="欧丽", attendance="online")
        for openid in ("o-alice", "o-olivia"):
            store_question(session, event_id="meetup-10", openid=openid, text="免费吗？", words="免费吗", now=clock.now())
    sweep(app, clock)  # 10:00: not yet
    assert texts_of(app, DIGEST_PURPOSE) == []

    clock.advance(timedelta(hours=11, minutes=1))  # 21:01
    sweep(app, clock)
    sweep(app, clock)  # the next minute's sweep queues nothing more
    digests = texts_of(app, DIGEST_PURPOSE)
    assert len(digests) == len(ORGANIZERS)
    assert digests[0] == (
        "「火山引擎开发者社区 Meetup 第十期」3 月 20 日报名日报\n"
        "现场：2 / 200，剩余 198 个座位\n"
        "线上：1，候补：0，已取消：0\n"
        "过去 24 小时新报名 2 人：王小丽、欧丽\n"
        "待回答的问题 1 个：免费吗？（2 人问）"
    )

    clock.advance(timedelta(days=1))
    sweep(app, clock)
    assert len(texts_of(app, DIGEST_PURPOSE)) == 2 * len(ORGANIZERS)
    assert "过去 24 小时新报名 0 人。" in texts_of(app, DIGEST_PURPOSE)[-1]


def test_no_digest_without_a_time(make_app, outbound_settings, clock):
    app = app_with_notices(make_app, outbound_settings, digest_at="")
    clock.advance(timedelta(hours=12))
    sweep(app, clock)
    assert texts_of(app, DIGEST_PURPOSE) == []
