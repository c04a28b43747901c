"""The fake WeChat API behaves like WeChat where the bot depends on it (driven over real HTTP)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import httpx
import pytest

from tests.conftest import FAKE_APP_ID, FAKE_APP_SECRET, REPO_ROOT
from tests.servers import free_port, wait_until_serving


@pytest.fixture
def api(fake_wechat):
    with httpx.Client(base_url=fake_wechat.base_url, timeout=10) as client:
        yield client


def token(api, force=False) -> str:
    body = {"grant_type": "client_credential", "appid": FAKE_APP_ID, "secret": FAKE_APP_SECRET, "force_refresh": force}
    return api.post("/cgi-bin/stable_token", json=body).json()["access_token"]


def send_text(api, access_token, openid, text="hi"):
    payload = {"touser": openid, "msgtype": "text", "text": {"content": text}}
    return api.post("/cgi-bin/message/custom/send", params={"access_token": access_token}, json=payload).json()


def test_a_new_token_invalidates_the_old_one_and_a_stable_token_is_reused(api, fake_wechat):
    fake_wechat.tell_follower("o-alice")
    first = token(api)
    assert token(api) == first  # stable_token without force_refresh hands out the current token
    second = api.get(
        "/cgi-bin/token", params={"grant_type": "client_credential", "appid": FAKE_APP_ID, "secret": FAKE_APP_SECRET}
    ).json()["access_token"]

    assert send_text(api, first, "o-alice")["errcode"] == 40001
    assert send_text(api, second, "o-alice")["errcode"] == 0
    assert fake_wechat.stats()["token_fetches"] == 3


def test_wrong_credentials_get_wechats_codes(api):
    answer = api.post("/cgi-bin/stable_token", json={"appid": FAKE_APP_ID, "secret": "wrong"}).json()
    assert answer["errcode"] == 40125


def test_customer_service_window_and_count_follow_the_followers_activity(api, fake_wechat, clock):
    access_token = token(api)
    fake_wechat.tell_follower("o-recent", last_interaction_at=clock.now() - timedelta(hours=47))
    fake_wechat.tell_follower("o-old", last_interaction_at=clock.now() - timedelta(hours=49))
    fake_wechat.tell_follower("o-gone", subscribed=False)

    assert [send_text(api, access_token, "o-recent")["errcode"] for _ in range(6)] == [0, 0, 0, 0, 0, 45047]
    assert send_text(api, access_token, "o-old")["errcode"] == 45015
    assert send_text(api, access_token, "o-gone")["errcode"] == 43004
    assert send_text(api, access_token, "o-stranger")["errcode"] == 40003
    fake_wechat.tell_follower("o-recent")  # writing again opens a fresh window
    assert send_text(api, access_token, "o-recent")["errcode"] == 0
    assert len(fake_wechat.messages()) == 6


def test_menu_qrcode_user_and_mass_endpoints_answer_like_wechat(api, fake_wechat):
    access_token = token(api)
    params = {"access_token": access_token}
    fake_wechat.tell_follower("o-alice")

    assert api.get("/cgi-bin/menu/get", params=params).json()["errcode"] == 46003
    menu = {"button": [{"type": "click", "name": "议程", "key": "AGENDA"}]}
    assert api.post("/cgi-bin/menu/create", params=params, json=menu).json()["errcode"] == 0
    assert api.get("/cgi-bin/menu/get", params=params).json() == {"menu": menu}
    assert api.post("/cgi-bin/qrcode/create", params=params, json={"expire_seconds": 600}).json()["expire_seconds"] == 600
    assert api.get("/cgi-bin/user/info", params={**params, "openid": "o-alice"}).json()["subscribe"] == 1
    mass = api.post("/cgi-bin/message/mass/send", params=params, json={"touser": ["o-alice"], "msgtype": "text"}).json()
    assert mass["errcode"] == 0 and mass["msg_id"]
    assert api.get("/cgi-bin/menu/get").json()["errcode"] == 40001  # no token, no answer


def test_eventbot_fake_wechat_prints_the_line_to_give_the_bot_and_serves_the_fake(tmp_path):
    port, log = free_port(), tmp_path / "fake-wechat.stderr"
    with log.open("wb") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "fake-wechat", "--port", str(port)],
            cwd=REPO_ROOT,
            env={**os.environ, "WECHAT_APP_ID": "wx-local", "WECHAT_APP_SECRET": "local-secret"},
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    try:
        process.stdout.readline()
        line = process.stdout.readline().strip()
        wait_until_serving(process, f"http://127.0.0.1:{port}", log, path="/_fake/messages")
        printed = dict(part.split("=", 1) for part in line.split())
        issued = httpx.post(
            f"{printed['WECHAT_API_BASE_URL']}/cgi-bin/stable_token",
            json={"appid": printed["WECHAT_APP_ID"], "secret": printed["WECHAT_APP_SECRET"]},
        ).json()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        process.stdout.close()

    assert line == f"WECHAT_APP_ID=wx-local WECHAT_APP_SECRET=local-secret WECHAT_API_BASE_URL=http://127.0.0.1:{port}"
    assert issued["access_token"]
