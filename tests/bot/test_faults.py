"""Faults mid-traffic: Redis killed and restarted empty, PostgreSQL cut off, WeChat's API stuck.

Each test runs a Redis server of its own (and a proxy in front of PostgreSQL), breaks it between
messages and mends it: no push ever gets a 5xx, no registration is lost, and the bot uses Redis (or the
database) again without a restart.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bot.devtools.simulator import WeChatSimulator
from models import Delivery, InboundMessage, texts
from models.deliveries import enqueue_message
from models.outbox import SENDING
from scheduler.wechat_client import build_client
from tests.conftest import BACKEND, FAKE_APP_ID, FAKE_APP_SECRET, TOKEN
from tests.faults import RedisServer, TcpProxy
from tests.outbound import follower_wrote
from tests.polling import wait_until
from tests.registration_steps import ANSWERS, FORM_ORDER, registration_of

pytestmark = pytest.mark.slow

CUSTOM_SEND = "/cgi-bin/message/custom/send"


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def app_on_own_redis(make_app, make_settings, redis_server: RedisServer):
    return make_app(make_settings(redis_url=redis_server.url))


@pytest.fixture
def wechat_on_own_redis(app_on_own_redis) -> Iterator[WeChatSimulator]:
    with TestClient(app_on_own_redis) as client:
        yield WeChatSimulator(client, TOKEN)


def ledger_keys(redis_server: RedisServer) -> int:
    client = redis.Redis.from_url(redis_server.url)
    try:
        return len(client.keys("*:inbound:*"))
    finally:
        client.close()


def readiness(wechat: WeChatSimulator) -> tuple[int, dict]:
    response = wechat.client.get("/readyz")
    return response.status_code, response.json()


def test_with_redis_down_questions_forms_and_registrations_go_on(wechat_on_own_redis, app_on_own_redis, redis_server):
    wechat = wechat_on_own_redis
    wechat.send_text("o-down", "报名")
    assert "姓名" in wechat.send_text("o-down", "同意").content
    assert "手机" in wechat.send_text("o-down", ANSWERS["name"]).content

    redis_server.stop()
    agenda = wechat.send_text("o-asker", "议程")
    assert agenda.status == 200 and "议程" in agenda.content
    assert readiness(wechat) == (200, {"status": "degraded", "database": "ok", "redis": "down"})
    # The form goes on from the database, question after question, to a confirmed registration.
    for field in FORM_ORDER[FORM_ORDER.index("phone"):]:
        reply = wechat.send_text("o-down", ANSWERS[field])
        assert reply.status == 200 and reply.content != texts.HANDLER_FAILED
    assert "确认" in reply.content
    assert wechat.send_text("o-down", "确认").status == 200
    assert registration_of(app_on_own_redis, "o-down").status == "confirmed"
    assert database_ledger_rows(app_on_own_redis) > 0  # de-duplicated by the database meanwhile


def database_ledger_rows(app) -> int:
    with app.state.services.sessions() as session:
        return session.scalar(select(func.count()).select_from(InboundMessage))


def test_a_form_survives_a_redis_restart_that_lost_every_key(wechat_on_own_redis, app_on_own_redis, redis_server):
    wechat = wechat_on_own_redis
    wechat.send_text("o-restart", "报名")
    wechat.send_text("o-restart", "同意")
    wechat.send_text("o-restart", ANSWERS["name"])

    redis_server.stop()
    redis_server.start()  # empty: no markers, no ledger, nothing

    # The phone number is the form's answer, not a question for the help menu.
    assert "公司" in wechat.send_text("o-restart", ANSWERS["phone"]).content
    for field in FORM_ORDER[FORM_ORDER.index("company"):]:
        wechat.send_text("o-restart", ANSWERS[field])
    wechat.send_text("o-restart", "确认")
    assert registration_of(app_on_own_redis, "o-restart").status == "confirmed"


def test_after_redis_comes_back_it_is_used_again_without_a_restart(wechat_on_own_redis, redis_server):
    wechat = wechat_on_own_redis
    redis_server.stop()
    assert wechat.send_text("o-back", "我的报名").content == texts.NOT_REGISTERED
    assert readiness(wechat)[1]["redis"] == "down"

    redis_server.start()
    assert readiness(wechat) == (200, {"status": "ok", "database": "ok", "redis": "ok"})
    assert wechat.send_text("o-back", "我的报名").content == texts.NOT_REGISTERED
    assert ledger_keys(redis_server) == 1  # the ledger is Redis's again


def test_kill_and_restore_redis_mid_traffic_loses_no_registration(wechat_on_own_redis, app_on_own_redis, redis_server):
    wechat = wechat_on_own_redis
    followers = [f"o-mid-{number}" for number in range(6)]
    steps = ["报名", *(ANSWERS[field] for field in FORM_ORDER), "确认"]
    statuses = []
    for round_number, step in enumerate(steps):
        if round_number == 2:
            redis_server.stop()
        if round_number == 5:
            redis_server.start()
        for openid in followers:
            statuses.append(wechat.send_text(openid, step).status)
            statuses.append(wechat.send_text(openid, "议程").status)
    assert set(statuses) == {200}
    assert [registration_of(app_on_own_redis, openid).status for openid in followers] == ["confirmed"] * 6


@pytest.mark.skipif(BACKEND != "postgresql", reason="cuts the connection to PostgreSQL")
def test_postgresql_cut_off_and_back(make_app, make_settings, database_url, redis_server):
    url = make_url(database_url)
    proxy = TcpProxy(url.host, url.port or 5432)
    proxy.mend()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    app = make_app(make_settings(database_url=proxied, redis_url=redis_server.url))
    try:
        with TestClient(app) as client:
            wechat = WeChatSimulator(client, TOKEN)
            assert wechat.send_text("o-pg", "我的报名").content == texts.NOT_REGISTERED

            proxy.cut()
            assert "议程" in wechat.send_text("o-pg", "议程").content  # from content, no database needed
            apology = wechat.send_text("o-pg", "我的报名")
            assert (apology.status, apology.content) == (200, texts.HANDLER_FAILED)
            assert readiness(wechat)[0] == 503

            proxy.mend()
            assert readiness(wechat)[0] == 200
            assert wechat.send_text("o-pg", "我的报名").content == texts.NOT_REGISTERED
    finally:
        proxy.cut()


def test_the_webhook_answers_while_the_sender_is_stuck_on_a_slow_api(
    make_app, outbound_settings, fake_wechat, sessions, clock
):
    follower_wrote(sessions, fake_wechat, "o-waiting", clock.now())
    # Longer than the client's timeout: the sender's call ends only when that timeout does.
    fake_wechat.inject("latency", seconds=12, path="message/custom/send", times=None)
    with sessions.begin() as session:
        enqueue_message(session, openid="o-waiting", text="稍后见", purpose="broadcast", dedup_key="stuck-1")
    app = make_app(outbound_settings, send_outbox=True)
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        wait_until(
            lambda: delivery_status(sessions) == SENDING and fake_wechat.stats()["calls"].get(CUSTOM_SEND),
            what="the sender's call to reach the fake, which holds it",
        )
        replies = [wechat.send_text(f"o-asking-{number}", "议程") for number in range(5)]
        registering = wechat.send_text("o-asking-0", "报名")
        # All answered while the sender still waits on its call (once it times out, the row is unknown).
        assert delivery_status(sessions) == SENDING
        fake_wechat.clear_faults()
    assert all("议程" in reply.content for reply in replies)
    assert "姓名" in registering.content


def delivery_status(sessions) -> str | None:
    with sessions() as session:
        return session.scalar(select(Delivery.status))


def test_the_access_token_and_ticket_come_from_the_database_while_redis_is_down(
    make_settings, sessions, clock, redis_server, fake_wechat
):
    settings = make_settings(wechat_app_id=FAKE_APP_ID, wechat_app_secret=FAKE_APP_SECRET,
                             wechat_api_base_url=fake_wechat.base_url, redis_url=redis_server.url)
    client = build_client(settings, sessions, clock)
    redis_server.stop()
    assert client.access_token
    assert client.jsapi_ticket()
