"""GET /admin/api/events: configured events with counts, per-day and per-channel figures, audience sizes."""

from datetime import datetime, timedelta

from fastapi.testclient import TestClient

from models.follower import Follower, get_or_create_follower
from models.outbox import SubscribeAcceptance, record_subscribe_acceptances
from tests.conftest import SHANGHAI
from tests.organizer_factories import ADMIN_TOKEN, AUTH, add_registration


def test_events_lists_the_configured_event_with_zero_counts(admin_api):
    body = admin_api.get("/admin/api/events").json()
    assert body["total"] == 1
    [event] = body["items"]
    assert event["id"] == "meetup-10"
    assert event["capacity"] == 200
    assert event["current"] is True
    assert event["timezone"] == "Asia/Shanghai"
    assert event["counts"] == {"confirmed": 0, "waitlisted": 0, "cancelled": 0, "checked_in": 0, "registered_today": 0}
    assert event["registrations_per_day"] == [] and event["by_channel"] == []


def test_events_counts_statuses_days_channels_and_audiences(admin_api, admin_app, clock):
    today = clock.now()
    yesterday = today - timedelta(days=1)
    with admin_app.state.services.sessions.begin() as session:
        add_registration(session, "o-a", now=yesterday, capacity=2, channel="poster")
        add_registration(session, "o-b", now=today, capacity=2, channel="poster", checked_in=True)
        add_registration(session, "o-c", now=today, capacity=2)  # no seat left: waitlisted
        add_registration(session, "o-d", now=today, capacity=2, channel="wechat-group", cancelled=True)
    [event] = admin_api.get("/admin/api/events").json()["items"]
    assert event["counts"] == {"confirmed": 2, "waitlisted": 1, "cancelled": 1, "checked_in": 1, "registered_today": 3}
    assert event["registrations_per_day"] == [
        {"date": yesterday.date().isoformat(), "count": 1},
        {"date": today.date().isoformat(), "count": 3},
    ]
    # Cancelled registrations do not count towards a channel's reach.
    assert event["by_channel"] == [{"channel": "poster", "count": 2}, {"channel": None, "count": 1}]
    assert event["audiences"] == {
        "confirmed": 2,
        "onsite": 2,
        "online": 0,
        "waitlisted": 1,
        "checked_in": 1,
        "not_checked_in": 1,
        "all_registrants": 3,
    }


def test_days_are_counted_in_the_bot_timezone(admin_api, admin_app, clock):
    # 2023-03-20 00:30 in Shanghai is still 03-19 in UTC: the day shown must be the organizer's day.
    just_after_midnight = clock.now().replace(hour=0, minute=30)
    with admin_app.state.services.sessions.begin() as session:
        add_registration(session, "o-early", now=just_after_midnight)
    [event] = admin_api.get("/admin/api/events").json()["items"]
    assert event["registrations_per_day"] == [{"date": "2023-03-20", "count": 1}]


def test_unknown_event_is_404_on_every_event_route(admin_api):
    assert admin_api.get("/admin/api/events/nope/reminders").status_code == 404
    response = admin_api.post("/admin/api/events/nope/checkin", json={"code": "ABC234"})
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


def test_checkin_by_code_returns_the_registration_and_is_idempotent(admin_api, admin_app, clock):
    with admin_app.state.services.sessions.begin() as session:
        code = add_registration(session, "o-a", now=clock.now(), name="王小丽", channel="poster").checkin_code
    clock.advance(timedelta(minutes=5))
    first = admin_api.post("/admin/api/events/meetup-10/checkin", json={"code": f" {code.lower()} "})
    assert first.status_code == 200
    body = first.json()
    assert (body["name"], body["checkin_code"], body["channel"], body["status"]) == ("王小丽", code, "poster", "confirmed")
    assert body["checked_in_at"] is not None
    clock.advance(timedelta(minutes=5))
    again = admin_api.post("/admin/api/events/meetup-10/checkin", json={"code": code})
    assert datetime.fromisoformat(again.json()["checked_in_at"]) == datetime.fromisoformat(body["checked_in_at"])


def test_checkin_by_code_errors(admin_api, admin_app, clock):
    with admin_app.state.services.sessions.begin() as session:
        add_registration(session, "o-a", now=clock.now(), capacity=1)
        waiting = add_registration(session, "o-b", now=clock.now(), capacity=1).checkin_code
    assert admin_api.post("/admin/api/events/meetup-10/checkin", json={"code": "ZZZZZZ"}).status_code == 404
    refused = admin_api.post("/admin/api/events/meetup-10/checkin", json={"code": waiting})
    assert refused.status_code == 409 and "「候补」" in refused.json()["detail"]
    missing = admin_api.post("/admin/api/events/meetup-10/checkin", json={})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["loc"] == ["body", "code"]
    empty = admin_api.post("/admin/api/events/meetup-10/checkin", json={"code": ""})
    assert empty.status_code == 422 and empty.json()["errors"][0]["loc"] == ["body", "code"]


def test_reminders_list_each_configured_reminder_with_its_state(admin_api, admin_app, clock):
    body = admin_api.get("/admin/api/events/meetup-10/reminders").json()
    assert body["total"] == 2
    assert [(item["offset"], item["due_at"], item["state"]) for item in body["items"]] == [
        ("1d", "2023-03-25T14:00:00+08:00", "scheduled"),
        ("2h", "2023-03-26T12:00:00+08:00", "scheduled"),
    ]
    assert body["items"][0]["counts"] == {"sent": 0, "failed": 0, "unreachable": 0, "pending": 0}


def test_reminders_show_what_was_sent(admin_api, admin_app, clock, settings):
    from scheduler.reminders import fire_due_reminders

    with admin_app.state.services.sessions.begin() as session:
        add_registration(session, "o-a", now=clock.now())
        add_registration(session, "o-b", now=clock.now())
    day_before = datetime(2023, 3, 25, 14, 0, tzinfo=SHANGHAI)
    clock.set(day_before)
    fire_due_reminders(admin_app.state.services.sessions, admin_app.state.services.settings, day_before)
    first, second = admin_api.get("/admin/api/events/meetup-10/reminders").json()["items"]
    assert (first["state"], first["recipients"], first["counts"]["pending"]) == ("sent", 2, 2)
    assert second["state"] == "scheduled"


def test_each_reminder_says_who_it_could_reach_now_by_which_channel(make_app, make_settings, clock):
    content = make_settings().content
    delivery = content.delivery.model_copy(update={"subscribe_templates": {"reminder": "TPL-REMIND"}})
    app = make_app(make_settings(admin_token=ADMIN_TOKEN, content=content.model_copy(update={"delivery": delivery})))
    now = clock.now()
    with app.state.services.sessions.begin() as session:
        for openid in ("o-granted", "o-recent", "o-silent"):
            add_registration(session, openid, now=now)
            get_or_create_follower(session, openid, now).last_interaction_at = now - timedelta(days=3)
        session.get(Follower, "o-recent").last_interaction_at = now
        record_subscribe_acceptances(session, "o-granted", ["TPL-REMIND"], now)

    with TestClient(app, headers=AUTH) as api:
        reminders = api.get("/admin/api/events/meetup-10/reminders").json()

    assert reminders["warning"] is None
    assert [item["reachable_now"] for item in reminders["items"]] == [{"subscribe": 1, "customer_service": 1, "unreachable": 1}] * 2
    with app.state.services.sessions() as session:  # a preview: the acceptance is still there to use
        assert session.get(SubscribeAcceptance, ("o-granted", "TPL-REMIND")).remaining == 1
