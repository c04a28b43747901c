"""Broadcasts end to end: audience → outbox → sender → the fake WeChat API over real HTTP (service and API)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from bot import organizer
from models import Follower
from scheduler.sender import build_sender
from tests.organizer_factories import ADMIN_TOKEN, AUTH, add_registration

AUDIENCE_MEMBERS = {
    "confirmed": ["o-alice", "o-bob"],
    "waitlisted": ["o-carol"],
    "checked_in": ["o-bob"],
    "not_checked_in": ["o-alice"],
    "all_registrants": ["o-alice", "o-bob", "o-carol"],
}


@pytest.fixture
def sender(outbound_settings, sessions, clock):
    return build_sender(outbound_settings, sessions, clock)


@pytest.fixture
def registrants(sessions, fake_wechat, clock):
    """Capacity 2: alice and bob (checked in) confirmed, carol waitlisted, dave cancelled; all wrote lately."""
    now = clock.now()
    with sessions.begin() as session:
        add_registration(session, "o-alice", now=now, capacity=2)
        add_registration(session, "o-bob", now=now, capacity=2, checked_in=True)
        add_registration(session, "o-carol", now=now, capacity=2)
        add_registration(session, "o-dave", now=now, capacity=2, cancelled=True)
    for openid in ("o-alice", "o-bob", "o-carol", "o-dave"):
        fake_wechat.tell_follower(openid, last_interaction_at=now)


def received(fake_wechat, text):
    return Counter(message["touser"] for message in fake_wechat.messages() if message["body"]["text"]["content"] == text)


def broadcast(sessions, clock, audience, text, send_at=None):
    with sessions.begin() as session:
        campaign = organizer.create_broadcast(
            session, event_id="meetup-10", audience=audience, text=text, now=clock.now(), send_at=send_at
        )
        return campaign.id


def status_of(sessions, clock, campaign_id):
    with sessions() as session:
        return organizer.broadcast_status(session, campaign_id, clock.now())


@pytest.mark.parametrize("audience", organizer.AUDIENCES)
def test_each_audience_gets_the_broadcast_exactly_once(registrants, sessions, sender, fake_wechat, clock, audience):
    campaign_id = broadcast(sessions, clock, audience, f"致{audience}")
    sender.run_until_idle()
    sender.run_until_idle()  # a second pass finds nothing left to send
    assert received(fake_wechat, f"致{audience}") == Counter(AUDIENCE_MEMBERS[audience])
    status = status_of(sessions, clock, campaign_id)
    assert status.status == "sent"
    assert status.counts == {"sent": len(AUDIENCE_MEMBERS[audience]), "failed": 0, "unreachable": 0, "pending": 0}


def test_failures_and_unreachable_followers_are_counted_with_their_reason(registrants, sessions, sender, fake_wechat, clock):
    fake_wechat.tell_follower("o-carol", last_interaction_at=clock.now(), subscribed=False)  # WeChat: 43004
    with sessions.begin() as session:  # our records: alice unfollowed, so no channel can reach her
        session.get(Follower, "o-alice").subscribed = False
    campaign_id = broadcast(sessions, clock, "all_registrants", "明天见")
    sender.run_until_idle()
    status = status_of(sessions, clock, campaign_id)
    assert status.counts == {"sent": 1, "failed": 1, "unreachable": 1, "pending": 0}
    assert status.errors == {"43004": 1}
    assert status.unreachable_reasons == {"unfollowed the account": 1}
    assert received(fake_wechat, "明天见") == Counter(["o-bob"])


def test_a_scheduled_broadcast_waits_for_its_time(registrants, sessions, sender, fake_wechat, clock):
    campaign_id = broadcast(sessions, clock, "confirmed", "开场提醒", send_at=clock.now() + timedelta(hours=2))
    sender.run_until_idle()
    assert received(fake_wechat, "开场提醒") == Counter()
    assert status_of(sessions, clock, campaign_id).status == "scheduled"

    clock.advance(timedelta(hours=2))
    fake_wechat.set_now(clock.now())
    sender.run_until_idle()
    assert received(fake_wechat, "开场提醒") == Counter(AUDIENCE_MEMBERS["confirmed"])
    assert status_of(sessions, clock, campaign_id).status == "sent"


def test_a_cancelled_broadcast_never_goes_out(registrants, sessions, sender, fake_wechat, clock):
    campaign_id = broadcast(sessions, clock, "all_registrants", "临时通知", send_at=clock.now() + timedelta(hours=1))
    with sessions.begin() as session:
        organizer.cancel_broadcast(session, campaign_id, clock.now())
    clock.advance(timedelta(hours=2))
    fake_wechat.set_now(clock.now())
    sender.run_until_idle()
    assert received(fake_wechat, "临时通知") == Counter()
    assert status_of(sessions, clock, campaign_id).status == "cancelled"
    with sessions.begin() as session, pytest.raises(organizer.AlreadyStarted):
        organizer.cancel_broadcast(session, campaign_id, clock.now())


def test_only_a_waiting_scheduled_broadcast_can_be_cancelled(registrants, sessions, clock):
    immediate = broadcast(sessions, clock, "confirmed", "马上发")
    with sessions.begin() as session, pytest.raises(organizer.AlreadyStarted):
        organizer.cancel_broadcast(session, immediate, clock.now())
    with sessions.begin() as session, pytest.raises(organizer.NotFound):
        organizer.cancel_broadcast(session, immediate + 100, clock.now())


@pytest.fixture
def admin_api(make_app, outbound_settings):
    app = make_app(outbound_settings.model_copy(update={"admin_token": ADMIN_TOKEN}))
    with TestClient(app, headers=AUTH) as client:
        yield client


def test_a_broadcast_scheduled_through_the_api_fires_at_send_at(admin_api, registrants, sender, fake_wechat, clock):
    created = admin_api.post(
        "/admin/api/broadcasts",
        json={"event_id": "meetup-10", "audience": "waitlisted", "text": "候补须知", "send_at": "2023-03-20T12:00:00+08:00"},
    )
    assert created.status_code == 201
    assert (created.json()["status"], created.json()["recipients"]) == ("scheduled", 1)
    clock.set(clock.now().replace(hour=11, minute=59))
    fake_wechat.set_now(clock.now())
    sender.run_until_idle()
    assert received(fake_wechat, "候补须知") == Counter()
    clock.set(clock.now().replace(hour=12, minute=0))
    fake_wechat.set_now(clock.now())
    sender.run_until_idle()
    assert received(fake_wechat, "候补须知") == Counter(["o-carol"])
    report = admin_api.get(f"/admin/api/broadcasts/{created.json()['id']}").json()
    assert (report["status"], report["counts"]["sent"]) == ("sent", 1)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"event_id": "meetup-10", "audience": "everyone", "text": "hi"}, "audience"),
        ({"event_id": "meetup-10", "audience": "confirmed"}, "text"),
        ({"event_id": "meetup-10", "audience": "confirmed", "text": "hi", "send_at": "tomorrow"}, "send_at"),
        ({"audience": "confirmed", "text": "hi"}, "event_id"),
    ],
)
def test_invalid_broadcasts_are_422_naming_the_field(admin_api, payload, field):
    response = admin_api.post("/admin/api/broadcasts", json=payload)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]
