"""Delivery reports of a reminder sent through the fake WeChat API, where everyone, some or nobody was
reached: the same honest figures and names in the CLI, the admin API and the report itself."""

from __future__ import annotations

from datetime import timedelta

import pytest
from typer.testing import CliRunner

from bot.cli import app as cli
from models.registration import ONSITE, register
from scheduler.reminders import fire_due_reminders, reminder_statuses
from tests.conftest import EVENT_ID, REPO_ROOT
from tests.outbound import follower_wrote

NAMES = {"o-zhang": "张三", "o-li": "李四", "o-wang": "王五"}
# Who wrote to the account within the last 48 hours before the reminder (the only channel configured).
RECENT = {"everyone": set(NAMES), "some": {"o-zhang"}, "nobody": set()}
SUMMARIES = {"everyone": "已送达：3/3 人收到", "some": "部分送达：1/3 人收到", "nobody": "未送达：0/3 人收到"}


@pytest.fixture(params=list(RECENT))
def reached(request, sessions, sender, fake_wechat, settings, clock, day_before) -> str:
    """The day-before reminder decided and sent; the recent writers reached, the others silent for 3 days."""
    for openid, name in NAMES.items():
        with sessions.begin() as session:
            register(session, event_id=EVENT_ID, openid=openid, answers={"name": name}, attendance=ONSITE, capacity=200, now=clock.now())
        wrote = timedelta(hours=1) if openid in RECENT[request.param] else timedelta(days=3)
        follower_wrote(sessions, fake_wechat, openid, day_before.due_at - wrote)
    clock.set(day_before.due_at)
    fake_wechat.set_now(clock.now())
    fire_due_reminders(sessions, settings, clock.now())
    sender.run_until_idle()
    return request.param


def missed_lines(reached: str) -> list[str]:
    return [f"{NAMES[openid]}：未互动超过 48 小时" for openid in NAMES if openid not in RECENT[reached]]


def test_the_report_says_delivered_x_of_n_and_who_was_missed_why(reached, sessions, settings, fake_wechat):
    with sessions() as session:
        [status, _] = reminder_statuses(session, settings.content, EVENT_ID)

    assert status.report.summary() == SUMMARIES[reached]
    assert [f"{missed.name}：{missed.reason}" for missed in status.report.missed] == missed_lines(reached)
    assert {message["touser"] for message in fake_wechat.messages()} == RECENT[reached]


def test_the_reminders_command_reports_the_same(reached, settings):
    environment = {"DATABASE_URL": settings.database_url, "EVENTBOT_CONFIG": str(REPO_ROOT / "config.toml")}

    result = CliRunner().invoke(cli, ["reminders"], env={**environment, "EVENTBOT_NOW": "2023-03-25T15:00:00+08:00"})

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1] == f"    1d before  2023-03-25 14:00  {SUMMARIES[reached]}"
    assert lines[2:-1] == [f"        未送达 {line}" for line in missed_lines(reached)]
    # The word follows the outcome: never 已送达 when nobody received it.
    assert ("已送达" in result.output) == (reached == "everyone")


def test_the_admin_api_reports_the_same(reached, admin_api):
    [day_before, _] = admin_api.get(f"/admin/api/events/{EVENT_ID}/reminders").json()["items"]

    report = day_before["report"]
    assert (report["summary"], report["recipients"]) == (SUMMARIES[reached], 3)
    assert [f"{missed['name']}：{missed['reason']}" for missed in report["missed"]] == missed_lines(reached)
