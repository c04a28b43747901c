"""The 订阅通知 grant loop against the fake WeChat API: the link after 确认, the page's JS-SDK signature
over the shared jsapi_ticket, the popup event's acceptance, and a reminder delivered beyond 48 hours."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from fastapi.testclient import TestClient

from bot.devtools.simulator import WeChatSimulator
from models import texts
from scheduler.reminders import fire_due_reminders, reminder_statuses
from scheduler.sender import build_sender
from tests.conftest import EVENT_ID, TOKEN
from tests.handlers.test_subscribe_messages import popup
from tests.registration_steps import register_via_chat

TEMPLATE_ID = "TPL-REMIND"
BASE_URL = "https://bot.example.org"
PAGE_PATH = f"/subscribe/{EVENT_ID}"


@pytest.fixture
def grant_settings(outbound_settings, make_settings, fake_wechat):
    """The fake's account, a 订阅通知 template for reminders and the public address the links use."""
    content = outbound_settings.content
    return make_settings(
        wechat_app_id=outbound_settings.wechat_app_id,
        wechat_app_secret=outbound_settings.wechat_app_secret,
        wechat_api_base_url=outbound_settings.wechat_api_base_url,
        content=content.model_copy(
            update={
                "bot": content.bot.model_copy(update={"public_base_url": BASE_URL}),
                "delivery": content.delivery.model_copy(update={"subscribe_templates": {"reminder": TEMPLATE_ID}}),
            }
        ),
    )


@pytest.fixture
def grant_app(make_app, grant_settings):
    return make_app(grant_settings)


@pytest.fixture
def grant_client(grant_app):
    with TestClient(grant_app, base_url=BASE_URL) as client:
        yield client


def wx_config(page: str) -> dict:
    return json.loads(re.search(r'<script id="wx-config" type="application/json">(.*?)</script>', page).group(1))


def js_sdk_signature(ticket: str, nonce: str, timestamp: int, url: str) -> str:
    """WeChat's JS-SDK signature, as its documentation (附录 1) defines it."""
    return hashlib.sha1(f"jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={url}".encode()).hexdigest()


def test_confirming_a_registration_offers_the_grant_link(grant_client):
    reply = register_via_chat(WeChatSimulator(grant_client, TOKEN), "o-grant")

    assert "报名成功" in reply.content
    assert f"{BASE_URL}{PAGE_PATH}" in reply.content


def test_no_link_without_a_subscribe_template(wechat):
    reply = register_via_chat(wechat, "o-plain")

    assert "报名成功" in reply.content and "/subscribe/" not in reply.content


def test_the_page_is_signed_for_its_url_with_the_shared_ticket(grant_client, make_app, grant_settings, fake_wechat):
    page = grant_client.get(PAGE_PATH)

    assert page.status_code == 200
    assert f'<wx-open-subscribe id="subscribe" template="{TEMPLATE_ID}">' in page.text
    assert "活动提醒" in page.text and "48 小时" in page.text
    config = wx_config(page.text)
    ticket = fake_wechat.stats()["jsapi_ticket"]
    assert config["appId"] == grant_settings.wechat_app_id
    assert config["openTagList"] == ["wx-open-subscribe"]
    assert config["signature"] == js_sdk_signature(ticket, config["nonceStr"], config["timestamp"], f"{BASE_URL}{PAGE_PATH}")
    # Another request, and another process, sign afresh with the same ticket, fetched once for all.
    with TestClient(make_app(grant_settings), base_url=BASE_URL) as other_process:
        again = wx_config(other_process.get(PAGE_PATH).text)
    assert again["nonceStr"] != config["nonceStr"]
    assert again["signature"] == js_sdk_signature(ticket, again["nonceStr"], again["timestamp"], f"{BASE_URL}{PAGE_PATH}")
    assert fake_wechat.stats()["calls"]["/cgi-bin/ticket/getticket"] == 1


def test_the_page_is_not_offered_for_an_unknown_event(grant_client):
    assert grant_client.get("/subscribe/no-such-event").status_code == 404


def test_a_granted_reminder_goes_out_beyond_48_hours_through_the_subscribe_message(
    grant_client, grant_app, grant_settings, fake_wechat, clock, day_before
):
    follower = WeChatSimulator(grant_client, TOKEN)
    reply = register_via_chat(follower, "o-grant")
    link = re.search(r"https://\S+", reply.content.split("订阅")[-1]).group(0)
    assert wx_config(grant_client.get(link).text)["signature"]
    # The follower taps the button and accepts: WeChat counts the grant, and tells the webhook.
    fake_wechat.tell_follower("o-grant", last_interaction_at=clock.now(), accepted_templates={TEMPLATE_ID: 1})
    assert follower.post(popup("o-grant", int(clock.now().timestamp()), (TEMPLATE_ID, "accept"))).is_success

    # Five days of silence later, the day-before reminder is due.
    clock.set(day_before.due_at)
    fake_wechat.set_now(clock.now())
    sessions = grant_app.state.services.sessions
    fire_due_reminders(sessions, grant_settings, clock.now())
    build_sender(grant_settings, sessions, clock).run_until_idle()

    [message] = fake_wechat.messages()
    assert (message["path"], message["touser"]) == ("message/subscribe/bizsend", "o-grant")
    assert message["body"]["template_id"] == TEMPLATE_ID
    with sessions() as session:
        [status, _] = reminder_statuses(session, grant_settings.content, EVENT_ID)
    assert status.report.summary() == "已送达：1/1 人收到"


def test_without_the_grant_the_report_says_why(grant_client, grant_app, grant_settings, fake_wechat, clock, day_before):
    register_via_chat(WeChatSimulator(grant_client, TOKEN), "o-silent")
    grant_app.state.services.activity.flush()  # what the app's recorder does within half a second
    fake_wechat.tell_follower("o-silent", last_interaction_at=clock.now())
    clock.set(day_before.due_at)
    fake_wechat.set_now(clock.now())
    sessions = grant_app.state.services.sessions
    fire_due_reminders(sessions, grant_settings, clock.now())
    build_sender(grant_settings, sessions, clock).run_until_idle()

    assert fake_wechat.messages() == []
    with sessions() as session:
        [status, _] = reminder_statuses(session, grant_settings.content, EVENT_ID)
    assert status.report.summary() == "未送达：0/1 人收到"
    assert [texts.missed_line(missed) for missed in status.report.missed] == ["张三：未授权订阅；未互动超过 48 小时"]
