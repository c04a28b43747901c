"""``GET /admin/api/events/{event_id}/registrations``: the registrations as stored, behind the bearer token."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from bot.devtools.simulator import WeChatSimulator
from models.redact import hash_openid
from tests.conftest import SHANGHAI, TOKEN
from tests.registration_steps import EVENT_ID, register_via_chat, settings_with_event

ADMIN_TOKEN = "registrations-admin-token"
URL = f"/admin/api/events/{EVENT_ID}/registrations"
FIELDS = {
    "id", "openid_hash", "status", "position", "name", "phone", "company", "title", "attendance", "walk_in", "checkin_code",
    "channel", "created_at", "checked_in_at", "phone_shared",
}


@pytest.fixture
def admin_app(make_settings, make_app):
    settings = settings_with_event(make_settings, capacity=1)
    return make_app(settings.model_copy(update={"admin_token": ADMIN_TOKEN}))


@pytest.fixture
def admin_client(admin_app):
    with TestClient(admin_app) as client:
        yield client


def authorised(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("headers", [{}, authorised("wrong-token")])
def test_the_list_needs_the_admin_token(admin_client, headers):
    assert admin_client.get(URL, headers=headers).status_code == 401


def test_the_list_shows_every_registration_with_its_channel_and_check_in(admin_client, clock):
    wechat = WeChatSimulator(admin_client, TOKEN)
    wechat.send_event("o-poster", "subscribe", key="qrscene_poster-a")
    register_via_chat(wechat, "o-poster", name="王五", phone="13900001111")
    register_via_chat(wechat, "o-second")
    register_via_chat(wechat, "o-gone")
    wechat.send_text("o-gone", "取消报名")
    wechat.send_text("o-gone", "确认")
    arrival = datetime(2023, 3, 26, 13, 50, tzinfo=SHANGHAI)
    clock.set(arrival)
    wechat.send_event("o-poster", "SCAN", key=f"checkin:{EVENT_ID}")

    body = admin_client.get(URL, headers=authorised()).json()

    assert body["total"] == 3
    assert all(set(item) == FIELDS for item in body["items"])
    first, second, gone = body["items"]
    assert (first["openid_hash"], first["name"], first["phone"], first["channel"]) == (
        hash_openid("o-poster"), "王五", "139****1111", "poster-a",
    )
    assert (first["status"], first["position"], first["attendance"]) == ("confirmed", None, "onsite")
    assert datetime.fromisoformat(first["checked_in_at"]) == arrival
    assert len(first["checkin_code"]) == 6
    assert (second["status"], second["position"], second["channel"]) == ("waitlisted", 1, None)
    assert (gone["status"], gone["position"]) == ("cancelled", None)


def test_a_phone_two_active_registrations_share_is_flagged_on_both(admin_client):
    wechat = WeChatSimulator(admin_client, TOKEN)
    for openid, name, phone in (("o-first", "甲", "13900001111"), ("o-second", "乙", "13900001111"), ("o-other", "丙", "13700002222")):
        register_via_chat(wechat, openid, name=name + "先生", phone=phone)

    items = admin_client.get(URL, headers=authorised()).json()["items"]
    assert [(item["name"], item["phone_shared"]) for item in items] == [
        ("甲先生", True), ("乙先生", True), ("丙先生", False),
    ]

    wechat.send_text("o-second", "取消报名")
    wechat.send_text("o-second", "确认")
    items = admin_client.get(URL, headers=authorised()).json()["items"]
    assert [item["phone_shared"] for item in items] == [False, False, False]


def test_an_unknown_event_is_404(admin_client):
    assert admin_client.get("/admin/api/events/no-such-event/registrations", headers=authorised()).status_code == 404
