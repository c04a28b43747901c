"""What a newcomer sees: ``eventbot serve``'s start-up summary and ``GET /``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from bot.startup import startup_summary
from models import texts
from models.clock import ManualClock
from tests.conftest import BEFORE_EVENT, REPO_ROOT, SHANGHAI, TOKEN
from tests.servers import free_port, wait_until_serving

BASE_URL = "http://127.0.0.1:8000"
AFTER_EVENT = datetime(2026, 12, 4, 10, 0, tzinfo=SHANGHAI)
DURING_EVENT = datetime(2023, 3, 26, 15, 0, tzinfo=SHANGHAI)


def bot_environment(**variables: str) -> dict[str, str]:
    """This process's environment without any bot setting, plus ``variables``."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("WECHAT_", "EVENTBOT_"))}
    environment.pop("ADMIN_TOKEN", None)
    environment.pop("REDIS_URL", None)
    return environment | variables


@pytest.fixture
def served(settings, tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """A real ``eventbot serve`` on the test database, its clock set before the event: its URL, stderr, stdout."""
    port, stderr, stdout = free_port(), tmp_path / "serve.stderr", tmp_path / "serve.stdout"
    environment = bot_environment(
        WECHAT_TOKEN=TOKEN,
        DATABASE_URL=settings.database_url,
        EVENTBOT_CONFIG=str(REPO_ROOT / "config.toml"),
        EVENTBOT_NOW=BEFORE_EVENT.isoformat(),
        EVENTBOT_RUN_SCHEDULER="0",
    )
    with stderr.open("wb") as errors, stdout.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT, env=environment, stdout=output, stderr=errors,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, url, stderr)
        yield url, stderr, stdout
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_serve_says_where_everything_is_and_answers_at_the_root(served, settings):
    url, stderr, stdout = served

    home = httpx.get(f"{url}/", timeout=10)

    assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
    assert "火山引擎开发者社区 · 活动助手" in home.text
    assert 'href="/admin"' in home.text and 'href="/healthz"' in home.text and "make run" in home.text
    assert TOKEN not in home.text and settings.database_url not in home.text
    lines = stderr.read_text(encoding="utf-8").splitlines()
    assert f"webhook 回调地址: {url}/wechat  模式 mode: 明文 plain" in lines
    assert f"管理后台 dashboard: {url}/admin  admin API 未开启 off (503 until ADMIN_TOKEN or ADMIN_TOKENS is set)" in lines
    assert "活动时钟 event clock: 2023-03-20 10:00 Asia/Shanghai (EVENTBOT_NOW 设定 overridden)" in lines
    assert (
        "当前活动 current event: meetup-10 火山引擎开发者社区 Meetup 第十期 2023-03-26 14:00–17:00  状态 state: 未开始 upcoming"
        in lines
    )
    assert "调度器 scheduler: 关闭 off (reminders go out only while `eventbot worker` runs)" in lines
    assert "注意 warning: 提醒发不出去 reminders reach no one: WECHAT_APP_ID and WECHAT_APP_SECRET are not set" in lines
    records = [json.loads(line) for line in stdout.read_text(encoding="utf-8").splitlines()]
    startup = next(record for record in records if record["logger"] == "eventbot.startup")
    assert startup["level"] == "WARNING"
    assert startup["startup"] | {"now": None, "database": None} == {
        "webhook_url": f"{url}/wechat",
        "webhook_mode": "plain",
        "public_webhook_url": None,
        "dashboard_url": f"{url}/admin",
        "admin_api": "off",
        "database": None,
        "redis": None,
        "clock": "overridden",
        "now": None,
        "event": "meetup-10",
        "event_state": "upcoming",
        "scheduler": "off",
        "reminder_channels": [],
        "warnings": ["提醒发不出去 reminders reach no one: WECHAT_APP_ID and WECHAT_APP_SECRET are not set"],
    }


def test_the_root_page_names_the_account_and_nothing_private(make_settings, make_app):
    app = make_app(make_settings(admin_token="organizer-secret", wechat_app_secret="app-secret"))
    with TestClient(app) as client:
        page = client.get("/")

    assert page.status_code == 200
    assert "「火山引擎开发者社区」公众号的活动助手" in page.text
    assert "organizer-secret" not in page.text and "app-secret" not in page.text and TOKEN not in page.text


def summary_text(settings, now: datetime = BEFORE_EVENT) -> str:
    summary = startup_summary(settings, ManualClock(now), BASE_URL)
    return "\n".join(summary.lines + [f"warning: {warning}" for warning in summary.warnings])


def test_on_the_real_clock_after_the_event_the_summary_points_to_a_demo_clock(make_settings):
    text = summary_text(make_settings(now_override=None), AFTER_EVENT)

    assert "活动时钟 event clock: 2026-12-04 10:00 Asia/Shanghai (真实时间 real)" in text
    assert "状态 state: 已结束 ended" in text
    assert (
        "warning: 活动已结束，回答都按结束后给出 the event is over and answers say so; for a demo: "
        "EVENTBOT_NOW=2023-03-25T14:00:00+08:00 (serve), or eventbot chat --now 2023-03-25T14:00:00+08:00"
    ) in text


def test_the_summary_tells_a_running_event(make_settings):
    assert "状态 state: 进行中 running" in summary_text(make_settings(), DURING_EVENT)


def test_the_summary_names_safe_mode_the_admin_api_and_the_public_url(make_settings):
    content = make_settings().content
    public = content.model_copy(update={"bot": content.bot.model_copy(update={"public_base_url": "https://bot.example.org/"})})

    text = summary_text(make_settings(admin_token="organizer-secret", wechat_encoding_aes_key="a" * 43, content=public))

    assert "模式 mode: 安全/兼容 safe or compat (EncodingAESKey set)" in text
    assert "公众号后台填写 URL for the MP console: https://bot.example.org/wechat" in text
    assert f"管理后台 dashboard: {BASE_URL}/admin  admin API 已开启 on" in text
    assert "organizer-secret" not in text


def test_named_admin_tokens_alone_turn_the_admin_api_on(make_settings):
    text = summary_text(make_settings(admin_tokens_raw="alice:token-of-alice"))

    assert f"管理后台 dashboard: {BASE_URL}/admin  admin API 已开启 on" in text
    assert "token-of-alice" not in text


def test_the_summary_shows_the_database_and_redis_without_their_passwords(make_settings):
    text = summary_text(make_settings(
        database_url="postgresql+psycopg://bot:s3cret@db.internal:5432/eventbot?password=s3cret",
        redis_url="redis://:hunter2@cache.internal:6379/0",
    ))

    assert "数据库 database: postgresql+psycopg://bot:***@db.internal:5432/eventbot  Redis: redis://:***@cache.internal:6379/0" in text
    assert "s3cret" not in text and "hunter2" not in text


@pytest.mark.parametrize("run_scheduler, line", [
    (True, "调度器 scheduler: 运行 on (reminders and scheduled broadcasts)"),
    (False, "调度器 scheduler: 关闭 off (reminders go out only while `eventbot worker` runs)"),
])
def test_the_summary_says_whether_the_scheduler_runs(make_settings, run_scheduler, line):
    assert line in summary_text(make_settings(run_scheduler=run_scheduler))


def with_delivery(make_settings, **changes):
    settings = make_settings(wechat_app_id="wx1", wechat_app_secret="secret")
    content = settings.content
    delivery = content.delivery.model_copy(update=changes)
    return make_settings(wechat_app_id="wx1", wechat_app_secret="secret", content=content.model_copy(update={"delivery": delivery}))


def test_reminders_by_customer_service_alone_warn_of_the_48_hour_window(make_settings):
    text = summary_text(with_delivery(make_settings, templates={}, subscribe_templates={}))

    assert "提醒 reminders: 客服消息 48 h only" in text
    assert f"warning: {texts.REACH_WARNING} (reminders reach only followers who wrote in the last 48 h" in text


def test_reminders_by_subscribe_messages_without_a_public_url_are_a_warning(make_settings):
    text = summary_text(with_delivery(make_settings, templates={}, subscribe_templates={"reminder": "sub-1"}))

    assert "提醒 reminders: 订阅通知 subscribe, 客服消息 48 h only" in text
    assert f"warning: {texts.SUBSCRIBE_LINK_WARNING} (订阅通知 set but no [bot] public_base_url" in text


def test_reminders_with_a_template_reach_everyone_without_a_warning(make_settings):
    summary = startup_summary(
        with_delivery(make_settings, templates={"reminder": "tmpl-1"}, subscribe_templates={}), ManualClock(BEFORE_EVENT), BASE_URL
    )

    assert "提醒 reminders: 模板消息 template, 客服消息 48 h only" in summary.lines
    assert summary.warnings == []
    assert summary.facts["reminder_channels"] == ["template", "customer_service"]


def test_reminders_no_channel_can_carry_are_a_warning(make_settings):
    text = summary_text(with_delivery(make_settings, channels=["template", "subscribe"], templates={}, subscribe_templates={}))

    assert "warning: 提醒发不出去 reminders reach no one: no channel in [delivery] channels can carry them" in text
