"""Check-in by the event's parametric QR code, scanned by a follower (SCAN) or by a newcomer (subscribe)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from bot.devtools.simulator import WeChatSimulator, push_xml
from models import Follower, texts
from tests.conftest import SHANGHAI, TOKEN
from tests.registration_steps import (
    EVENT_ID,
    register_via_chat,
    registration_of,
    registrations,
    settings_with_event,
)

OPENID = "o-arriving"
CHECKIN_SCENE = f"checkin:{EVENT_ID}"
AT_THE_DOOR = datetime(2023, 3, 26, 13, 40, tzinfo=SHANGHAI)
# The shipped meetup runs 14:00-17:00; check-in opens 2 hours before the start by default.
CHECKIN_OPENS = datetime(2023, 3, 26, 12, 0, tzinfo=SHANGHAI)
EVENT_ENDS = datetime(2023, 3, 26, 17, 0, tzinfo=SHANGHAI)
ONE_SECOND = timedelta(seconds=1)


def scan(wechat: WeChatSimulator, openid: str = OPENID, scene: str = CHECKIN_SCENE, create_time: int | None = None) -> str:
    """A scan of ``scene``; two scans in the same second are one push to WeChat (its retry) unless
    ``create_time`` tells them apart."""
    push = push_xml(openid, "event", {"Event": "SCAN", "EventKey": scene, "Ticket": "ticket"}, create_time=create_time)
    return wechat.post(push).content


def follow_by_scanning(wechat: WeChatSimulator, openid: str = OPENID, scene: str = CHECKIN_SCENE) -> str:
    return wechat.send_event(openid, "subscribe", key=f"qrscene_{scene}", Ticket="ticket").content


def follower(app, openid: str = OPENID) -> Follower:
    with app.state.services.sessions() as session:
        return session.get(Follower, openid)


def test_scanning_the_checkin_code_checks_a_registrant_in(wechat, app, clock):
    register_via_chat(wechat, OPENID)
    clock.set(AT_THE_DOOR)

    reply = scan(wechat)

    registration = registration_of(app, OPENID)
    assert (registration.status, registration.checked_in_at) == ("confirmed", AT_THE_DOOR)
    assert "张三，签到成功，欢迎来到" in reply and f"签到码：{registration.checkin_code}" in reply


def test_checking_in_twice_is_harmless(wechat, app, clock):
    register_via_chat(wechat, OPENID)
    clock.set(AT_THE_DOOR)
    first = scan(wechat)
    clock.advance(timedelta(minutes=10))

    second = scan(wechat, create_time=int(time.time()) + 600)

    assert second == first
    assert registration_of(app, OPENID).checked_in_at == AT_THE_DOOR
    assert "已签到" in wechat.send_text(OPENID, "我的报名").content


def test_following_by_scanning_the_checkin_code_checks_in_without_becoming_a_channel(wechat, app, clock):
    register_via_chat(wechat, OPENID)
    wechat.send_event(OPENID, "unsubscribe")
    clock.set(AT_THE_DOOR)

    reply = follow_by_scanning(wechat)

    assert "签到成功" in reply
    assert registration_of(app, OPENID).checked_in_at == AT_THE_DOOR
    assert (follower(app).channel, follower(app).subscribed) == (None, True)


def test_other_qr_scenes_still_record_the_channel(wechat, app):
    reply = follow_by_scanning(wechat, scene="poster-a")
    assert "感谢关注" in reply
    assert follower(app).channel == "poster-a"


@pytest.mark.parametrize("scan_with", [scan, follow_by_scanning])
def test_an_unregistered_scanner_is_told_how_to_register(wechat, app, clock, scan_with):
    clock.set(AT_THE_DOOR)
    reply = scan_with(wechat)
    assert "你还没有报名" in reply and "回复「报名」" in reply
    assert registrations(app) == []


def test_a_waitlisted_scanner_is_not_checked_in(make_settings, make_app, clock):
    app = make_app(settings_with_event(make_settings, capacity=1))
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        register_via_chat(wechat, "o-seated")
        register_via_chat(wechat, OPENID)
        clock.set(AT_THE_DOOR)

        assert scan(wechat) == texts.checkin_waitlisted(1)
    assert registration_of(app, OPENID).checked_in_at is None


def test_walk_ins_are_registered_on_the_spot_while_seats_remain(make_settings, make_app, clock):
    app = make_app(settings_with_event(make_settings, capacity=1, walk_in=True))
    clock.set(AT_THE_DOOR)
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)

        first = scan(wechat, "o-walk-in-1")
        second = scan(wechat, "o-walk-in-2")

    registration = registration_of(app, "o-walk-in-1")
    assert (registration.status, registration.checked_in_at) == ("confirmed", AT_THE_DOOR)
    assert "签到成功" in first
    assert registration_of(app, "o-walk-in-2") is None
    assert "你还没有报名" in second


def test_a_code_for_an_unknown_event_is_refused(wechat, app):
    assert scan(wechat, scene="checkin:no-such-event") == texts.CHECKIN_UNKNOWN


@pytest.mark.parametrize("moment", [CHECKIN_OPENS, EVENT_ENDS - ONE_SECOND])
def test_check_in_is_open_from_two_hours_before_the_start_to_the_end(wechat, app, clock, moment):
    register_via_chat(wechat, OPENID)
    clock.set(moment)

    assert "签到成功" in scan(wechat)
    assert registration_of(app, OPENID).checked_in_at == moment


@pytest.mark.parametrize("scan_with", [scan, follow_by_scanning])
def test_a_scan_before_check_in_opens_says_when_it_opens(wechat, app, clock, scan_with):
    register_via_chat(wechat, OPENID)
    clock.set(CHECKIN_OPENS - ONE_SECOND)

    reply = scan_with(wechat)

    assert reply == "「火山引擎开发者社区 Meetup 第十期」的签到将于 2023年3月26日（周日）12:00 开放（活动开始前 2 小时），到时请再扫码签到。"
    assert registration_of(app, OPENID).checked_in_at is None


def test_a_scan_once_the_event_has_ended_is_refused(wechat, app, clock):
    register_via_chat(wechat, OPENID)
    clock.set(EVENT_ENDS)

    assert scan(wechat) == "「火山引擎开发者社区 Meetup 第十期」已经结束，签到已关闭。"
    assert registration_of(app, OPENID).checked_in_at is None


def test_walk_ins_are_not_registered_outside_the_check_in_window(make_settings, make_app, clock):
    app = make_app(settings_with_event(make_settings, walk_in=True))
    clock.set(CHECKIN_OPENS - ONE_SECOND)
    with TestClient(app) as client:
        reply = scan(WeChatSimulator(client, TOKEN), "o-early-walk-in")

    assert "签到将于" in reply
    assert registrations(app) == []


def test_the_check_in_window_is_configured_per_event(make_settings, make_app, clock):
    app = make_app(settings_with_event(make_settings, checkin_opens_before="30m"))
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        register_via_chat(wechat, "o-early")
        register_via_chat(wechat, "o-on-time")
        clock.set(datetime(2023, 3, 26, 13, 29, 59, tzinfo=SHANGHAI))
        early = scan(wechat, "o-early")
        clock.set(datetime(2023, 3, 26, 13, 30, tzinfo=SHANGHAI))
        on_time = scan(wechat, "o-on-time")

    assert "13:30 开放（活动开始前 30 分钟）" in early
    assert "签到成功" in on_time
