"""``/events/{event_id}.ics``: a valid iCalendar file in the event's local time, linked when configured."""

from __future__ import annotations

from datetime import datetime

from fastapi.testclient import TestClient
from icalendar import Calendar

from bot.devtools.simulator import WeChatSimulator
from tests.conftest import SHANGHAI, TOKEN
from tests.registration_steps import EVENT_ID, register_via_chat, settings_with_bot

PUBLIC_URL = "https://bot.example.org"
VENUE = "北京市海淀区北三环西路甲 18 号院大钟寺广场 1 号楼 3F-18 报告厅"


def test_the_event_calendar_has_the_local_time_and_the_venue(client):
    response = client.get(f"/events/{EVENT_ID}.ics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    [timezone] = calendar.walk("VTIMEZONE")
    [entry] = calendar.walk("VEVENT")
    assert str(timezone["TZID"]) == "Asia/Shanghai"
    assert entry.decoded("DTSTART") == datetime(2023, 3, 26, 14, 0, tzinfo=SHANGHAI)
    assert entry["DTSTART"].params["TZID"] == "Asia/Shanghai"
    assert entry.decoded("DTEND") == datetime(2023, 3, 26, 17, 0, tzinfo=SHANGHAI)
    assert str(entry["LOCATION"]) == VENUE
    assert "从云原生到大数据" in str(entry["SUMMARY"])
    assert entry["UID"] and entry["DTSTAMP"]


def test_an_unknown_event_has_no_calendar(client):
    assert client.get("/events/no-such-event.ics").status_code == 404


def test_the_confirmation_links_the_calendar_when_a_public_url_is_configured(make_settings, make_app):
    app = make_app(settings_with_bot(make_settings, public_base_url=PUBLIC_URL + "/"))
    with TestClient(app) as client:
        reply = register_via_chat(WeChatSimulator(client, TOKEN), "o-calendar").content
    assert f"添加到日历：{PUBLIC_URL}/events/{EVENT_ID}.ics" in reply


def test_no_calendar_link_without_a_public_url(wechat):
    assert "添加到日历" not in register_via_chat(wechat, "o-calendar").content
