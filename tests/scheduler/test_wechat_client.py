"""The WeChat client against the fake WeChat API over real HTTP: base URL, shared token, bounded refresh."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests
from wechatpy.exceptions import WeChatClientException

from bot.devtools.fake_wechat import LoopbackServer
from scheduler.wechat_client import (
    IDLE_CONNECTION_SECONDS,
    EnvironmentReadOnceSession,
    Outcome,
    TokenUnavailable,
    build_client,
    classify,
    wechat_http_session,
)
from tests.conftest import FAKE_APP_ID, FAKE_APP_SECRET, REPO_ROOT
from tests.outbound import outbound_environment


@pytest.fixture
def client(outbound_settings, sessions, clock):
    return build_client(outbound_settings, sessions, clock)


def test_calls_and_token_fetch_go_to_the_configured_base_url(client, fake_wechat):
    fake_wechat.tell_follower("o-alice")

    assert client.message.send_text("o-alice", "你好")["errcode"] == 0

    stats = fake_wechat.stats()
    assert stats["token_fetches"] == 1
    assert stats["calls"]["/cgi-bin/message/custom/send"] == 1
    assert [m["body"]["text"]["content"] for m in fake_wechat.messages()] == ["你好"]


def test_token_is_fetched_once_and_reused_by_a_second_client(client, outbound_settings, sessions, clock, fake_wechat):
    fake_wechat.tell_follower("o-alice")
    other = build_client(outbound_settings, sessions, clock)

    client.message.send_text("o-alice", "一")
    other.message.send_text("o-alice", "二")

    assert fake_wechat.stats()["token_fetches"] == 1


TOKEN_USER = """
import sys
from models.clock import clock_for
from bot.settings import load_settings
from scheduler.wechat_client import build_client
from models.db import create_db_engine, session_factory

settings = load_settings()
engine = create_db_engine(settings.database_url)
client = build_client(settings, session_factory(engine), clock_for(None, settings.tz))
print(client.user.get("o-alice")["openid"])
"""


def test_two_processes_share_one_token_fetch(outbound_settings, fake_wechat):
    fake_wechat.tell_follower("o-alice")
    # A slow token endpoint keeps the first process inside its refresh while the second one asks.
    fake_wechat.inject("latency", seconds=2, path="stable_token", times=None)
    env = outbound_environment(outbound_settings, fake_wechat)
    processes = [
        subprocess.Popen([sys.executable, "-c", TOKEN_USER], env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=60)[0].strip() for process in processes]

    assert [process.returncode for process in processes] == [0, 0]
    assert outputs == ["o-alice", "o-alice"]
    stats = fake_wechat.stats()
    assert stats["calls"]["/cgi-bin/user/info"] == 2
    assert stats["token_fetches"] == 1


def test_token_rejected_once_is_refreshed_once_and_the_call_succeeds(client, fake_wechat):
    fake_wechat.tell_follower("o-alice")
    client.message.send_text("o-alice", "先拿到令牌")
    fake_wechat.inject("errcode", errcode=40001, times=1)

    assert client.message.send_text("o-alice", "再发一次")["errcode"] == 0

    stats = fake_wechat.stats()
    assert stats["token_fetches"] == 2
    assert stats["calls"]["/cgi-bin/message/custom/send"] == 3
    assert len(fake_wechat.messages()) == 2


def test_expired_token_is_refreshed_and_the_call_succeeds(client, fake_wechat):
    fake_wechat.tell_follower("o-alice")
    client.message.send_text("o-alice", "一")
    fake_wechat.expire_token()

    client.message.send_text("o-alice", "二")

    assert fake_wechat.stats()["token_fetches"] == 2
    assert len(fake_wechat.messages()) == 2


def test_token_rejected_always_gives_up_after_one_refresh(client, fake_wechat):
    fake_wechat.tell_follower("o-alice")
    fake_wechat.inject("errcode", errcode=40001, times=None)

    with pytest.raises(WeChatClientException) as raised:
        client.message.send_text("o-alice", "发不出去")

    assert raised.value.errcode == 40001
    assert classify(raised.value).outcome is Outcome.ACCOUNT
    stats = fake_wechat.stats()
    assert stats["token_fetches"] == 2
    assert stats["calls"]["/cgi-bin/message/custom/send"] == 2
    assert fake_wechat.messages() == []


def test_wrong_app_secret_is_an_account_wide_error(make_settings, fake_wechat, sessions, clock):
    settings = make_settings(
        wechat_app_id=FAKE_APP_ID, wechat_app_secret="wrong", wechat_api_base_url=fake_wechat.base_url
    )
    client = build_client(settings, sessions, clock)

    with pytest.raises(TokenUnavailable) as raised:
        client.message.send_text("o-alice", "hi")

    error = classify(raised.value)
    assert (error.outcome, error.errcode) == (Outcome.ACCOUNT, 40125)
    assert fake_wechat.stats()["calls"].get("/cgi-bin/message/custom/send") is None


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        ({"kind": "errcode", "errcode": -1}, Outcome.TRANSIENT),
        ({"kind": "http_status", "status": 502}, Outcome.TRANSIENT),
        ({"kind": "errcode", "errcode": 45009}, Outcome.ACCOUNT),
        ({"kind": "errcode", "errcode": 61004}, Outcome.ACCOUNT),
        ({"kind": "errcode", "errcode": 45015}, Outcome.PERMANENT),
        ({"kind": "drop"}, Outcome.UNCERTAIN),
    ],
)
def test_errors_are_classified_by_what_they_mean_for_the_message(client, fake_wechat, fault, outcome):
    fake_wechat.tell_follower("o-alice")
    fake_wechat.inject(**fault)

    with pytest.raises((WeChatClientException, requests.RequestException)) as raised:
        client.message.send_text("o-alice", "hi")

    assert classify(raised.value).outcome is outcome


def test_a_server_that_is_not_there_is_transient(make_settings, sessions, clock):
    settings = make_settings(
        wechat_app_id=FAKE_APP_ID, wechat_app_secret=FAKE_APP_SECRET, wechat_api_base_url="http://127.0.0.1:9"
    )
    client = build_client(settings, sessions, clock)

    with pytest.raises(TokenUnavailable) as raised:
        client.message.send_text("o-alice", "hi")

    assert classify(raised.value).outcome is Outcome.TRANSIENT


def test_wechatpys_own_fetch_access_token_forces_a_new_shared_token_from_the_fake(client, fake_wechat):
    first = client.access_token

    fetched = client.fetch_access_token()["access_token"]

    assert fetched != first
    assert client.access_token == fetched
    assert fake_wechat.stats()["token_fetches"] == 2


def test_a_client_reuses_its_token_and_takes_a_replaced_one_from_the_store_after_one_rejection(
    client, outbound_settings, sessions, clock, fake_wechat
):
    fake_wechat.tell_follower("o-alice")
    client.message.send_text("o-alice", "一")
    build_client(outbound_settings, sessions, clock).fetch_access_token()  # another process forces a new one

    assert client.message.send_text("o-alice", "二")["errcode"] == 0

    stats = fake_wechat.stats()
    # The held token was tried and rejected once; the new one came from the store, not from WeChat.
    assert stats["token_fetches"] == 2
    assert stats["calls"]["/cgi-bin/message/custom/send"] == 3
    assert len(fake_wechat.messages()) == 2


def test_the_http_session_honours_the_environment_read_once_per_host(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "api.internal.invalid")
    session = EnvironmentReadOnceSession()
    expected = requests.Session().merge_environment_settings("https://api.weixin.qq.com/cgi-bin/x", {}, None, None, None)

    first = session.merge_environment_settings("https://api.weixin.qq.com/cgi-bin/x", {}, None, None, None)
    assert first == expected and first["proxies"]["https"] == "http://proxy.invalid:3128"
    assert session.merge_environment_settings("https://api.internal.invalid/x", {}, None, None, None)["proxies"] == {}

    first["proxies"].clear()  # what a redirect may do to the copy it got
    monkeypatch.setenv("HTTPS_PROXY", "http://other.invalid:3128")  # read once: the process's environment
    assert session.merge_environment_settings("https://api.weixin.qq.com/cgi-bin/y", {}, None, None, None) == expected


def test_the_http_session_sends_a_hosts_netrc_credentials_read_once(monkeypatch, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine proxy.internal.invalid login bot password s3cret\n")
    monkeypatch.setenv("NETRC", str(netrc))
    session = EnvironmentReadOnceSession()

    def authorization(url: str) -> str | None:
        return session.prepare_request(requests.Request("GET", url)).headers.get("Authorization")

    expected = requests.Session().prepare_request(requests.Request("GET", "https://proxy.internal.invalid/x"))
    assert authorization("https://proxy.internal.invalid/x") == expected.headers["Authorization"]
    assert authorization("https://api.weixin.qq.com/cgi-bin/x") is None
    netrc.unlink()  # read once: the process's environment
    assert authorization("https://proxy.internal.invalid/y") == expected.headers["Authorization"]


async def answer_with_the_client_port(scope, receive, send) -> None:
    """A bare ASGI app: the port the request came from, which tells one connection from another."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(scope["client"][1]).encode()})


def test_a_connection_left_idle_is_closed_before_the_server_would_close_it():
    # A server closing an idle connection as the client writes a call on it loses that call; the client
    # lets go first. This server keeps connections for longer than the client's limit.
    server = LoopbackServer(answer_with_the_client_port, lifespan="off", keep_alive_seconds=IDLE_CONNECTION_SECONDS + 10)
    with server, wechat_http_session(connections=1) as session:
        first = session.get(server.base_url).text
        assert session.get(server.base_url).text == first  # kept alive while in use

        time.sleep(IDLE_CONNECTION_SECONDS + 0.5)  # the idle time is what is tested

        assert session.get(server.base_url).text != first
