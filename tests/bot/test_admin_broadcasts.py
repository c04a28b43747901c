"""``/admin/api/broadcasts`` over HTTP, with the sender delivering through the fake WeChat API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from models import organizer
from scheduler.sender import build_sender
from tests.organizer_factories import ADMIN_TOKEN, AUTH, EVENT_ID, add_registration


@pytest.fixture
def admin(make_app, outbound_settings):
    with TestClient(make_app(outbound_settings.model_copy(update={"admin_token": ADMIN_TOKEN}))) as client:
        yield client


@pytest.fixture
def registrants(sessions, fake_wechat, clock):
    """alice confirmed, bob confirmed and checked in (but has unfollowed at WeChat), carol waitlisted."""
    now = clock.now()
    with sessions.begin() as session:
        add_registration(session, "o-alice", now=now, capacity=2)
        add_registration(session, "o-bob", now=now, capacity=2, checked_in=True)
        add_registration(session, "o-carol", now=now, capacity=2)
    fake_wechat.tell_follower("o-alice", last_interaction_at=now)
    fake_wechat.tell_follower("o-bob", last_interaction_at=now, subscribed=False)
    fake_wechat.tell_follower("o-carol", last_interaction_at=now)


def create(admin, audience="confirmed", text="明天 14:00 见"):
    return admin.post("/admin/api/broadcasts", headers=AUTH, json={"event_id": EVENT_ID, "audience": audience, "text": text})


def test_creating_a_broadcast_returns_at_once_with_its_recipients(admin, registrants, fake_wechat):
    response = create(admin)

    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["recipients"]) == ("sending", 2)  # confirmed includes the checked-in
    assert fake_wechat.messages() == []  # nothing is sent inside the request


def test_report_counts_outcomes_and_wechat_error_codes(admin, registrants, sender, fake_wechat):
    broadcast_id = create(admin).json()["id"]

    sender.run_until_idle()
    report = admin.get(f"/admin/api/broadcasts/{broadcast_id}", headers=AUTH).json()

    assert report["status"] == "sent"
    assert report["counts"] == {"sent": 1, "failed": 1, "unreachable": 0, "pending": 0}
    assert report["errors"] == {"43004": 1}
    assert [m["touser"] for m in fake_wechat.messages()] == ["o-alice"]


def test_an_account_wide_error_shows_the_broadcast_paused_with_the_code(admin, registrants, sender, fake_wechat):
    fake_wechat.inject("errcode", errcode=45009, times=None)
    broadcast_id = create(admin, audience="all_registrants").json()["id"]

    sender.run_until_idle()
    report = admin.get(f"/admin/api/broadcasts/{broadcast_id}", headers=AUTH).json()

    assert (report["status"], report["paused_errcode"]) == ("paused", 45009)
    assert report["counts"]["pending"] == 3
    assert "quota" in report["paused_reason"]


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"event_id": EVENT_ID, "audience": "everyone", "text": "hi"}, 422),
        ({"event_id": EVENT_ID, "audience": "confirmed", "text": "   "}, 422),
        ({"event_id": "no-such-event", "audience": "confirmed", "text": "hi"}, 404),
    ],
)
def test_bad_requests_are_refused(admin, payload, status):
    assert admin.post("/admin/api/broadcasts", headers=AUTH, json=payload).status_code == status


def test_unknown_broadcast_is_404(admin):
    assert admin.get("/admin/api/broadcasts/999", headers=AUTH).status_code == 404


def test_broadcasts_need_the_bearer_token(admin):
    assert create(admin).status_code == 201
    assert admin.post("/admin/api/broadcasts", json={"event_id": EVENT_ID, "audience": "confirmed", "text": "hi"}).status_code == 401
    assert admin.get("/admin/api/broadcasts/1").status_code == 401


def test_a_scheduled_broadcast_can_be_cancelled_before_its_time(admin, registrants, sender, fake_wechat):
    created = admin.post(
        "/admin/api/broadcasts",
        headers=AUTH,
        json={"event_id": EVENT_ID, "audience": "confirmed", "text": "会前提醒", "send_at": "2023-03-25T20:00:00"},
    ).json()
    report = admin.get(f"/admin/api/broadcasts/{created['id']}", headers=AUTH).json()
    assert (created["status"], report["send_at"]) == ("scheduled", "2023-03-25T12:00:00Z")

    assert admin.delete(f"/admin/api/broadcasts/{created['id']}", headers=AUTH).status_code == 204
    sender.run_until_idle()

    assert admin.get(f"/admin/api/broadcasts/{created['id']}", headers=AUTH).json()["status"] == "cancelled"
    assert admin.delete(f"/admin/api/broadcasts/{created['id']}", headers=AUTH).status_code == 409
    assert fake_wechat.messages() == []


def test_a_scheduled_broadcast_reports_its_audience_size_until_it_is_sent_then_the_real_count(
    admin, registrants, sessions, sender, fake_wechat, clock
):
    created = admin.post(
        "/admin/api/broadcasts",
        headers=AUTH,
        json={"event_id": EVENT_ID, "audience": "confirmed", "text": "会前提醒", "send_at": "2023-03-20T12:00:00"},
    ).json()
    with sessions.begin() as session:
        add_registration(session, "o-erin", now=clock.now(), capacity=3)
    fake_wechat.tell_follower("o-erin", last_interaction_at=clock.now())
    waiting = admin.get(f"/admin/api/broadcasts/{created['id']}", headers=AUTH).json()

    clock.advance(timedelta(hours=2))
    fake_wechat.set_now(clock.now())
    with sessions.begin() as session:  # the scheduler's sweep
        organizer.start_due_broadcasts(session, clock.now())
    sender.run_until_idle()
    done = admin.get(f"/admin/api/broadcasts/{created['id']}", headers=AUTH).json()

    assert (created["status"], created["recipients"]) == ("scheduled", 2)
    assert (waiting["status"], waiting["recipients"], waiting["counts"]["pending"]) == ("scheduled", 3, 0)
    assert (done["status"], done["recipients"], done["counts"]["sent"]) == ("sent", 3, 2)  # bob unfollowed
    assert sorted(m["touser"] for m in fake_wechat.messages()) == ["o-alice", "o-erin"]


def test_a_broadcast_goes_as_a_template_message_when_a_broadcast_template_is_configured(
    admin, registrants, outbound_settings, sessions, fake_wechat, clock
):
    delivery = outbound_settings.content.delivery.model_copy(update={"templates": {"broadcast": "TPL-BROADCAST"}})
    settings = outbound_settings.model_copy(update={"content": outbound_settings.content.model_copy(update={"delivery": delivery})})
    clock.advance(timedelta(days=5))  # everyone's 48-hour window has closed
    broadcast_id = create(admin, audience="waitlisted", text="有名额了").json()["id"]

    build_sender(settings, sessions, clock).run_until_idle()

    (message,) = fake_wechat.messages()
    assert (message["path"], message["touser"], message["body"]["template_id"]) == (
        "message/template/send",
        "o-carol",
        "TPL-BROADCAST",
    )
    assert message["body"]["data"]["first"] == {"value": "有名额了"}
    assert admin.get(f"/admin/api/broadcasts/{broadcast_id}", headers=AUTH).json()["counts"]["sent"] == 1
