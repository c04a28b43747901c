"""GET /admin/api/events: configured events with counts, per-day and per-channel figures, audience sizes."""

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from tests.organizer_factories import ADMIN_TOKEN, AUTH, add_registration


@pytest.fixture
def admin_app(make_app, make_settings):
    return make_app(make_settings(admin_token=ADMIN_TOKEN))


@pytest.fixture
def api(admin_app):
    with TestClient(admin_app, headers=AUTH) as client:
        yield client


def test_events_lists_the_configured_event_with_zero_counts(api):
    body = api.get("/admin/api/events").json()
    assert body["total"] == 1
    [event] = body["items"]
    assert event["id"] == "meetup-10"
    assert event["capacity"] == 200
    assert event["current"] is True
    assert event["timezone"] == "Asia/Shanghai"
    assert event["counts"] == {"confirmed": 0, "waitlisted": 0, "cancelled": 0, "checked_in": 0, "registered_today": 0}
    assert event["registrations_per_day"] == [] and event["by_channel"] == []


def test_events_counts_statuses_days_channels_and_audiences(api, admin_app, clock):
    today = clock.now()
    yesterday = today - timedelta(days=1)
    with admin_app.state.sessions.begin() as session:
        add_registration(session, "o-a", now=yesterday, capacity=2, channel="poster")
        add_registration(session, "o-b", now=today, capacity=2, channel="poster", checked_in=True)
        add_registration(session, "o-c", now=today, capacity=2)  # no seat left: waitlisted
        add_registration(session, "o-d", now=today, capacity=2, channel="wechat-group", cancelled=True)
    [event] = api.get("/admin/api/events").json()["items"]
    assert event["counts"] == {"confirmed": 2, "waitlisted": 1, "cancelled": 1, "checked_in": 1, "registered_today": 3}
    assert event["registrations_per_day"] == [
        {"date": yesterday.date().isoformat(), "count": 1},
        {"date": today.date().isoformat(), "count": 3},
    ]
    # Cancelled registrations do not count towards a channel's reach.
    assert event["by_channel"] == [{"channel": "poster", "count": 2}, {"channel": None, "count": 1}]
    assert event["audiences"] == {
        "confirmed": 2,
        "waitlisted": 1,
        "checked_in": 1,
        "not_checked_in": 1,
        "all_registrants": 3,
    }


def test_days_are_counted_in_the_bot_timezone(api, admin_app, clock):
    # 2023-03-20 00:30 in Shanghai is still 03-19 in UTC: the day shown must be the organizer's day.
    just_after_midnight = clock.now().replace(hour=0, minute=30)
    with admin_app.state.sessions.begin() as session:
        add_registration(session, "o-early", now=just_after_midnight)
    [event] = api.get("/admin/api/events").json()["items"]
    assert event["registrations_per_day"] == [{"date": "2023-03-20", "count": 1}]
