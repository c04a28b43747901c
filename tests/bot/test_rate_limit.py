"""The per-follower token bucket: over the limit, one short notice, then ``success`` without the database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from bot.devtools.simulator import WeChatSimulator
from models import texts
from models.content import RateLimitConfig
from tests.bot.test_content_answers import ledger_entries
from tests.conftest import TOKEN

ADMIN = "o-organizer"


@pytest.fixture
def limited_settings(make_settings):
    content = make_settings().content
    # One message a minute after a burst of three: nothing refills while a test runs.
    limits = RateLimitConfig(burst=3, per_minute=1)
    return make_settings(content=content.model_copy(update={"rate_limit": limits}), admin_openids_raw=ADMIN)


def test_a_flood_gets_one_notice_then_silence_and_never_reaches_the_database(make_app, limited_settings):
    app = make_app(limited_settings)
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        handled = [wechat.send_text("o-flood", "我的报名").content for _ in range(3)]
        entries = ledger_entries(app)
        notice = wechat.send_text("o-flood", "我的报名")
        ignored = [wechat.send_text("o-flood", "我的报名") for _ in range(5)]
        other = wechat.send_text("o-calm", "我的报名")
        assert ledger_entries(app) == entries + 1  # only o-calm's message

    assert handled == [texts.NOT_REGISTERED] * 3
    assert notice.content == texts.TOO_FREQUENT
    assert all(reply.is_success for reply in ignored)
    assert other.content == texts.NOT_REGISTERED


def test_admins_are_not_limited(make_app, limited_settings):
    with TestClient(make_app(limited_settings)) as client:
        wechat = WeChatSimulator(client, TOKEN)
        replies = [wechat.send_text(ADMIN, "议程").content for _ in range(6)]
    assert all("议程" in reply for reply in replies)


def test_the_limit_is_shared_by_processes_through_redis(make_app, limited_settings):
    if not limited_settings.redis_url:
        pytest.skip("without Redis each process keeps its own buckets")
    with TestClient(make_app(limited_settings)) as first, TestClient(make_app(limited_settings)) as second:
        replies = [
            WeChatSimulator(client, TOKEN).send_text("o-both", "议程") for client in (first, second, first, second)
        ]
    assert ["议程" in reply.content for reply in replies[:3]] == [True] * 3
    assert replies[3].content == texts.TOO_FREQUENT
