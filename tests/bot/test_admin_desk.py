"""The organizer's desk over the admin API: on-site and online counted apart, broadcasts to either, the
attendance filter, undo check-in, walk-ins, cancelling with waitlist promotion, broadcast history."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from models.registration import ONLINE
from scheduler.sender import build_sender
from tests.conftest import SHANGHAI
from tests.organizer_factories import ADMIN_TOKEN, AUTH, EVENT_ID, add_registration

EVENTS = "/admin/api/events"
REGISTRATIONS = f"{EVENTS}/{EVENT_ID}/registrations"


@pytest.fixture
def desk_app(make_app, outbound_settings):
    """The app for an event of two seats."""
    content = outbound_settings.content
    event = content.events[0].model_copy(update={"capacity": 2})
    content = content.model_copy(update={"events": [event]})
    return make_app(outbound_settings.model_copy(update={"admin_token": ADMIN_TOKEN, "content": content}))


@pytest.fixture
def admin(desk_app):
    with TestClient(desk_app, headers=AUTH) as client:
        yield client


@pytest.fixture
def people(desk_app, fake_wechat, clock):
    """Two seats: alice and bob on site, olivia online, carol waitlisted; ids by name."""
    now = clock.now()
    with desk_app.state.services.sessions.begin() as session:
        ids = {
            "alice": add_registration(session, "o-alice", now=now, name="王小丽", capacity=2).id,
            "bob": add_registration(session, "o-bob", now=now, name="李雷", capacity=2, checked_in=True).id,
            "olivia": add_registration(session, "o-olivia", now=now, name="欧丽", capacity=2, attendance=ONLINE).id,
            "carol": add_registration(session, "o-carol", now=now, name="陈卡", capacity=2).id,
        }
    for openid in ("o-alice", "o-bob", "o-olivia", "o-carol"):
        fake_wechat.tell_follower(openid, last_interaction_at=now)
    return ids


def the_event(admin) -> dict:
    [event] = admin.get(EVENTS).json()["items"]
    return event


def test_events_split_on_site_from_online(admin, people):
    event = the_event(admin)
    assert event["onsite"] == {"confirmed": 2, "walk_ins": 0, "capacity": 2, "left": 0, "waitlisted": 1}
    assert event["online"] == {"confirmed": 1, "checked_in": 0}
    assert event["checked_in"] == 1
    assert event["audiences"]["onsite"] == 2 and event["audiences"]["online"] == 1


def test_a_broadcast_to_on_site_people_never_reaches_the_online_registrant(
    admin, desk_app, people, outbound_settings, fake_wechat, clock
):
    response = admin.post(
        "/admin/api/broadcasts", json={"event_id": EVENT_ID, "audience": "onsite", "text": "请提前到场签到，记得带电脑"}
    )
    assert response.status_code == 201 and response.json()["recipients"] == 2
    admin.post("/admin/api/broadcasts", json={"event_id": EVENT_ID, "audience": "online", "text": "直播链接稍后发送"})
    build_sender(outbound_settings, desk_app.state.services.sessions, clock).run_until_idle()
    received = {(message["touser"], message["body"]["text"]["content"]) for message in fake_wechat.messages()}
    assert received == {
        ("o-alice", "请提前到场签到，记得带电脑"),
        ("o-bob", "请提前到场签到，记得带电脑"),
        ("o-olivia", "直播链接稍后发送"),
    }


def test_registrations_filter_by_attendance(admin, people):
    online = admin.get(REGISTRATIONS, params={"attendance": "online"}).json()
    assert [item["name"] for item in online["items"]] == ["欧丽"] and online["total"] == 1
    onsite = admin.get(REGISTRATIONS, params={"attendance": "onsite"}).json()
    assert [item["name"] for item in onsite["items"]] == ["王小丽", "李雷", "陈卡"]
    assert admin.get(REGISTRATIONS, params={"attendance": "elsewhere"}).status_code == 422


def test_checking_in_an_online_registrant_warns_the_desk(admin, people):
    body = admin.post(f"{REGISTRATIONS}/{people['olivia']}/checkin").json()
    assert body["checked_in_at"] is not None
    assert body["warning"] == "注意：欧丽 报名的是线上观看，没有为其预留现场座位。"
    assert admin.post(f"{REGISTRATIONS}/{people['alice']}/checkin").json()["warning"] is None
    assert the_event(admin)["online"] == {"confirmed": 1, "checked_in": 1}


def test_a_check_in_can_be_undone(admin, people):
    assert admin.delete(f"{REGISTRATIONS}/{people['bob']}/checkin").json()["checked_in_at"] is None
    assert the_event(admin)["checked_in"] == 0
    assert admin.delete(f"{REGISTRATIONS}/999/checkin").json() == {"detail": "没有编号为 999 的报名记录。"}


def test_cancelling_from_the_desk_promotes_the_waitlist_and_tells_them(
    admin, desk_app, people, outbound_settings, fake_wechat, clock
):
    body = admin.post(f"{REGISTRATIONS}/{people['alice']}/cancel").json()
    assert body["registration"]["status"] == "cancelled"
    assert [(item["name"], item["status"]) for item in body["promoted"]] == [("陈卡", "confirmed")]
    assert the_event(admin)["onsite"]["waitlisted"] == 0
    build_sender(outbound_settings, desk_app.state.services.sessions, clock).run_until_idle()
    assert [message["touser"] for message in fake_wechat.messages()] == ["o-carol"]


def test_a_walk_in_is_checked_in_counted_apart_and_never_messaged(admin, people):
    admin.post(f"{REGISTRATIONS}/{people['alice']}/cancel")  # carol takes alice's seat: still full
    refused = admin.post(f"{EVENTS}/{EVENT_ID}/walk-ins", json={"name": "赵六", "phone": "13600001111"})
    assert refused.status_code == 409 and refused.json()["detail"] == "现场 2 个座位已满，不能再添加现场补登。"
    admin.post(f"{REGISTRATIONS}/{people['carol']}/cancel")

    added = admin.post(f"{EVENTS}/{EVENT_ID}/walk-ins", json={"name": "赵六", "phone": "136 0000 1111"})
    assert added.status_code == 201
    assert added.json()["walk_in"] is True and added.json()["checked_in_at"] is not None
    assert added.json()["phone"] == "136****1111"  # masked like every list; the number is kept in full
    assert admin.get(f"{REGISTRATIONS}/{added.json()['id']}/phone").json()["phone"] == "13600001111"
    event = the_event(admin)
    assert event["onsite"] == {"confirmed": 1, "walk_ins": 1, "capacity": 2, "left": 0, "waitlisted": 0}
    assert event["audiences"]["onsite"] == 1 and event["audiences"]["checked_in"] == 1
    bad_phone = admin.post(f"{EVENTS}/{EVENT_ID}/walk-ins", json={"name": "钱七", "phone": "12345"})
    assert bad_phone.status_code == 422 and "手机号格式不对" in bad_phone.json()["errors"][0]["msg"]


def test_errors_the_desk_shows_are_chinese(admin, people):
    admin.post(f"{REGISTRATIONS}/{people['alice']}/cancel")
    refused = admin.post(f"{REGISTRATIONS}/{people['alice']}/checkin")
    assert refused.status_code == 409
    assert refused.json()["detail"] == "王小丽 的报名状态是「已取消」，不能签到。"
    assert admin.get(f"{EVENTS}/nope/registrations").json()["detail"].startswith("没有这个活动：nope")
    unknown_code = admin.post(f"{EVENTS}/{EVENT_ID}/checkin", json={"code": "zzzzzz"})
    assert unknown_code.json()["detail"] == "没有找到签到码 ZZZZZZ 的报名记录。"


def test_broadcast_history_lists_each_with_its_report(admin, desk_app, people, outbound_settings, fake_wechat, clock):
    fake_wechat.tell_follower("o-bob", last_interaction_at=clock.now(), subscribed=False)
    first = admin.post("/admin/api/broadcasts", json={"event_id": EVENT_ID, "audience": "onsite", "text": "明天见！请提前…"})
    later = clock.now().replace(year=2030)
    admin.post(
        "/admin/api/broadcasts",
        json={"event_id": EVENT_ID, "audience": "online", "text": "直播提醒", "send_at": later.isoformat()},
    )
    build_sender(outbound_settings, desk_app.state.services.sessions, clock).run_until_idle()

    history = admin.get("/admin/api/broadcasts", params={"event_id": EVENT_ID}).json()
    assert history["total"] == 2
    scheduled, sent = history["items"]
    assert (scheduled["status"], scheduled["audience"], scheduled["text"]) == ("scheduled", "online", "直播提醒")
    assert scheduled["send_at"] is not None and scheduled["recipients"] == 1
    assert sent["id"] == first.json()["id"]
    assert (sent["status"], sent["audience"], sent["text"]) == ("sent", "onsite", "明天见！请提前…")
    assert sent["counts"] == {"sent": 1, "failed": 1, "unreachable": 0, "pending": 0}
    assert sent["report"]["missed"][0]["name"] == "李雷" and sent["finished_at"] is not None
    assert admin.get("/admin/api/broadcasts", params={"event_id": "other"}).json() == {"items": [], "total": 0}


def test_the_desk_is_told_which_event_takes_place_today_on_the_event_clock(make_app, outbound_settings, clock):
    content = outbound_settings.content
    meetup = content.events[0]
    week = timedelta(days=7)
    next_one = meetup.model_copy(update={"id": "meetup-11", "starts_at": meetup.starts_at + week, "ends_at": meetup.ends_at + week})
    content = content.model_copy(update={"events": [meetup, next_one]})
    app = make_app(outbound_settings.model_copy(update={"admin_token": ADMIN_TOKEN, "content": content}))

    def today(admin) -> tuple[str, dict[str, bool]]:
        body = admin.get(EVENTS).json()
        return body["today"], {event["id"]: event["today"] for event in body["items"]}

    with TestClient(app, headers=AUTH) as admin:
        assert today(admin) == ("2023-03-20", {EVENT_ID: False, "meetup-11": False})
        clock.set(datetime(2023, 3, 26, 8, 0, tzinfo=SHANGHAI))  # the morning of the meetup, before the doors open
        assert today(admin) == ("2023-03-26", {EVENT_ID: True, "meetup-11": False})
        clock.set(datetime(2023, 3, 27, 1, 0, tzinfo=SHANGHAI))  # still the 26th in UTC, the 27th in Beijing
        assert today(admin) == ("2023-03-27", {EVENT_ID: False, "meetup-11": False})
        clock.set(datetime(2023, 4, 2, 16, 0, tzinfo=SHANGHAI))
        assert today(admin) == ("2023-04-02", {EVENT_ID: False, "meetup-11": True})
