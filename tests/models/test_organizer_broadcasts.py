"""Broadcasts end to end: audience → outbox → sender → the fake WeChat API over real HTTP (service and API)."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from models import Follower, Registration, organizer, texts
from models.db import create_db_engine, session_factory
from models.registration import check_in
from tests.organizer_factories import ADMIN_TOKEN, AUTH, add_registration

AUDIENCE_MEMBERS = {
    "confirmed": ["o-alice", "o-bob"],
    "onsite": ["o-alice", "o-bob"],
    "online": [],  # tests/bot/test_admin_desk.py broadcasts to an online registrant
    "waitlisted": ["o-carol"],
    "checked_in": ["o-bob"],
    "not_checked_in": ["o-alice"],
    "all_registrants": ["o-alice", "o-bob", "o-carol"],
}


NAMES = {"o-alice": "王小丽", "o-bob": "李雷", "o-carol": "韩梅梅", "o-dave": "赵四"}


@pytest.fixture
def registrants(sessions, fake_wechat, clock):
    """Capacity 2: alice and bob (checked in) confirmed, carol waitlisted, dave cancelled; all wrote lately."""
    now = clock.now()
    with sessions.begin() as session:
        add_registration(session, "o-alice", now=now, capacity=2, name=NAMES["o-alice"])
        add_registration(session, "o-bob", now=now, capacity=2, checked_in=True, name=NAMES["o-bob"])
        add_registration(session, "o-carol", now=now, capacity=2, name=NAMES["o-carol"])
        add_registration(session, "o-dave", now=now, capacity=2, cancelled=True, name=NAMES["o-dave"])
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


def status_of(sessions, campaign_id):
    with sessions() as session:
        return organizer.broadcast_status(session, campaign_id)


def time_passes(clock, fake_wechat, delta):
    clock.advance(delta)
    fake_wechat.set_now(clock.now())


def scheduler_sweeps(sessions, clock):
    """What the leader's once-a-minute sweep does to scheduled broadcasts."""
    with sessions.begin() as session:
        return organizer.start_due_broadcasts(session, clock.now())


@pytest.mark.parametrize("audience", organizer.AUDIENCES)
def test_each_audience_gets_the_broadcast_exactly_once(registrants, sessions, sender, fake_wechat, clock, audience):
    campaign_id = broadcast(sessions, clock, audience, f"致{audience}")
    sender.run_until_idle()
    sender.run_until_idle()  # a second pass finds nothing left to send
    assert received(fake_wechat, f"致{audience}") == Counter(AUDIENCE_MEMBERS[audience])
    status = status_of(sessions, campaign_id)
    assert status.status == "sent"
    assert status.counts == {"sent": len(AUDIENCE_MEMBERS[audience]), "failed": 0, "unreachable": 0, "pending": 0}


def test_failures_and_unreachable_followers_are_counted_with_their_reason(registrants, sessions, sender, fake_wechat, clock):
    fake_wechat.tell_follower("o-carol", last_interaction_at=clock.now(), subscribed=False)  # WeChat: 43004
    with sessions.begin() as session:  # our records: alice unfollowed, so no channel can reach her
        session.get(Follower, "o-alice").subscribed = False
    campaign_id = broadcast(sessions, clock, "all_registrants", "明天见")
    sender.run_until_idle()
    status = status_of(sessions, campaign_id)
    assert status.counts == {"sent": 1, "failed": 1, "unreachable": 1, "pending": 0}
    assert status.errors == {"43004": 1}
    assert status.unreachable_reasons == {"已取消关注": 1}
    assert (status.report.delivered, status.report.recipients, status.report.outcome) == (1, 3, "partly")
    assert [texts.missed_line(missed) for missed in status.report.missed] == [
        f"{NAMES['o-alice']}：已取消关注",
        f"{NAMES['o-carol']}：已取消关注",
    ]
    assert received(fake_wechat, "明天见") == Counter(["o-bob"])


def test_a_scheduled_broadcast_waits_for_its_time(registrants, sessions, sender, fake_wechat, clock):
    campaign_id = broadcast(sessions, clock, "confirmed", "开场提醒", send_at=clock.now() + timedelta(hours=2))
    time_passes(clock, fake_wechat, timedelta(hours=2) - timedelta(seconds=1))
    assert scheduler_sweeps(sessions, clock) == []
    sender.run_until_idle()
    assert received(fake_wechat, "开场提醒") == Counter()
    assert status_of(sessions, campaign_id).status == "scheduled"

    time_passes(clock, fake_wechat, timedelta(seconds=1))
    assert [plan.campaign_id for plan in scheduler_sweeps(sessions, clock)] == [campaign_id]
    sender.run_until_idle()
    assert received(fake_wechat, "开场提醒") == Counter(AUDIENCE_MEMBERS["confirmed"])
    assert status_of(sessions, campaign_id).status == "sent"


def test_a_scheduled_broadcast_has_no_deliveries_and_previews_its_audience_until_it_starts(
    registrants, sessions, clock
):
    campaign_id = broadcast(sessions, clock, "confirmed", "开场提醒", send_at=clock.now() + timedelta(hours=2))
    status = status_of(sessions, campaign_id)
    assert (status.status, status.recipients, status.counts["pending"]) == ("scheduled", 2, 0)
    with sessions.begin() as session:
        add_registration(session, "o-erin", now=clock.now(), capacity=3)
    assert status_of(sessions, campaign_id).recipients == 3


def test_someone_who_checks_in_before_send_at_does_not_get_a_not_checked_in_broadcast(
    registrants, sessions, sender, fake_wechat, clock
):
    campaign_id = broadcast(sessions, clock, "not_checked_in", "还没签到的朋友请抓紧", send_at=clock.now() + timedelta(hours=1))
    time_passes(clock, fake_wechat, timedelta(minutes=30))
    with sessions.begin() as session:
        alice = session.scalars(select(Registration).where(Registration.openid == "o-alice")).one()
        check_in(session, alice, clock.now())

    time_passes(clock, fake_wechat, timedelta(minutes=30))
    scheduler_sweeps(sessions, clock)
    sender.run_until_idle()

    assert received(fake_wechat, "还没签到的朋友请抓紧") == Counter()
    status = status_of(sessions, campaign_id)
    assert (status.status, status.recipients) == ("sent", 0)


def test_a_late_registrant_gets_a_scheduled_broadcast_to_the_confirmed(
    registrants, sessions, sender, fake_wechat, clock
):
    campaign_id = broadcast(sessions, clock, "confirmed", "明天见", send_at=clock.now() + timedelta(hours=1))
    time_passes(clock, fake_wechat, timedelta(minutes=30))
    with sessions.begin() as session:
        add_registration(session, "o-erin", now=clock.now(), capacity=3)
    fake_wechat.tell_follower("o-erin", last_interaction_at=clock.now())

    time_passes(clock, fake_wechat, timedelta(minutes=30))
    scheduler_sweeps(sessions, clock)
    sender.run_until_idle()

    assert received(fake_wechat, "明天见") == Counter(["o-alice", "o-bob", "o-erin"])
    assert status_of(sessions, campaign_id).recipients == 3


def test_starting_a_scheduled_broadcast_twice_delivers_once(registrants, sessions, sender, fake_wechat, clock):
    campaign_id = broadcast(sessions, clock, "all_registrants", "会场在三楼", send_at=clock.now() + timedelta(hours=1))
    time_passes(clock, fake_wechat, timedelta(hours=1))

    assert len(scheduler_sweeps(sessions, clock)) == 1
    with sessions.begin() as session:  # the exact-time job, firing after the sweep got there
        assert organizer.start_scheduled_broadcast(session, campaign_id, clock.now()) is None
    assert scheduler_sweeps(sessions, clock) == []
    sender.run_until_idle()

    assert received(fake_wechat, "会场在三楼") == Counter(AUDIENCE_MEMBERS["all_registrants"])


def test_two_processes_starting_a_scheduled_broadcast_at_once_deliver_once(
    registrants, database_url, sender, sessions, fake_wechat, clock
):
    campaign_id = broadcast(sessions, clock, "all_registrants", "签到开始", send_at=clock.now() + timedelta(hours=1))
    time_passes(clock, fake_wechat, timedelta(hours=1))
    both_ready = threading.Barrier(2)

    def process(_) -> bool:
        """One scheduler's attempt, on its own engine as another process would have; whether it started it."""
        engine = create_db_engine(database_url)
        try:
            both_ready.wait()
            with session_factory(engine).begin() as session:
                return organizer.start_scheduled_broadcast(session, campaign_id, clock.now()) is not None
        finally:
            engine.dispose()

    with ThreadPoolExecutor(max_workers=2) as pool:
        started = list(pool.map(process, range(2)))
    sender.run_until_idle()

    assert sorted(started) == [False, True]
    assert received(fake_wechat, "签到开始") == Counter(AUDIENCE_MEMBERS["all_registrants"])
    assert status_of(sessions, campaign_id).counts["sent"] == 3


@pytest.mark.parametrize(
    ("late", "outcome"),
    [(organizer.BROADCAST_GRACE, "sent"), (organizer.BROADCAST_GRACE + timedelta(minutes=1), "skipped")],
    ids=["within-grace", "beyond-grace"],
)
def test_a_broadcast_whose_time_passed_while_no_scheduler_ran_is_sent_only_within_the_grace_window(
    registrants, sessions, sender, fake_wechat, clock, late, outcome
):
    campaign_id = broadcast(sessions, clock, "confirmed", "茶歇开始", send_at=clock.now() + timedelta(hours=1))
    time_passes(clock, fake_wechat, timedelta(hours=1) + late)

    scheduler_sweeps(sessions, clock)
    sender.run_until_idle()

    status = status_of(sessions, campaign_id)
    assert status.status == outcome
    if outcome == "sent":
        assert received(fake_wechat, "茶歇开始") == Counter(AUDIENCE_MEMBERS["confirmed"])
        assert status.skip_reason is None
    else:
        assert received(fake_wechat, "茶歇开始") == Counter()
        assert status.skip_reason.startswith("晚了 31 分钟，超过允许的 30 分钟")


def test_a_cancelled_broadcast_never_goes_out(registrants, sessions, sender, fake_wechat, clock):
    campaign_id = broadcast(sessions, clock, "all_registrants", "临时通知", send_at=clock.now() + timedelta(hours=1))
    with sessions.begin() as session:
        organizer.cancel_broadcast(session, campaign_id)
    time_passes(clock, fake_wechat, timedelta(hours=1))
    assert scheduler_sweeps(sessions, clock) == []
    sender.run_until_idle()
    assert received(fake_wechat, "临时通知") == Counter()
    assert status_of(sessions, campaign_id).status == "cancelled"
    with sessions.begin() as session, pytest.raises(organizer.AlreadyStarted):
        organizer.cancel_broadcast(session, campaign_id)


def test_only_a_waiting_scheduled_broadcast_can_be_cancelled(registrants, sessions, fake_wechat, clock):
    immediate = broadcast(sessions, clock, "confirmed", "马上发")
    started = broadcast(sessions, clock, "confirmed", "一小时后", send_at=clock.now() + timedelta(hours=1))
    time_passes(clock, fake_wechat, timedelta(hours=1))
    scheduler_sweeps(sessions, clock)
    for campaign_id in (immediate, started):
        with sessions.begin() as session, pytest.raises(organizer.AlreadyStarted):
            organizer.cancel_broadcast(session, campaign_id)
    with sessions.begin() as session, pytest.raises(organizer.NotFound):
        organizer.cancel_broadcast(session, immediate + 100)


@pytest.fixture
def admin_api(make_app, outbound_settings):
    app = make_app(outbound_settings.model_copy(update={"admin_token": ADMIN_TOKEN}))
    with TestClient(app, headers=AUTH) as client:
        yield client


def test_a_broadcast_scheduled_through_the_api_fires_at_send_at(
    admin_api, registrants, sessions, sender, fake_wechat, clock
):
    created = admin_api.post(
        "/admin/api/broadcasts",
        json={"event_id": "meetup-10", "audience": "waitlisted", "text": "候补须知", "send_at": "2023-03-20T12:00:00+08:00"},
    )
    assert created.status_code == 201
    assert (created.json()["status"], created.json()["recipients"]) == ("scheduled", 1)
    clock.set(clock.now().replace(hour=11, minute=59))
    fake_wechat.set_now(clock.now())
    scheduler_sweeps(sessions, clock)
    sender.run_until_idle()
    assert received(fake_wechat, "候补须知") == Counter()
    clock.set(clock.now().replace(hour=12, minute=0))
    fake_wechat.set_now(clock.now())
    scheduler_sweeps(sessions, clock)
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
    assert response.json()["errors"][0]["loc"] == ["body", field]
