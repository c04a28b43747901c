"""config.toml drives every answer; bad config stops start-up with a message naming the field."""

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.devtools.simulator import WeChatSimulator
from bot.settings import load_settings
from models.content import ConfigError, load_content, parse_offset
from tests.conftest import REPO_ROOT, SHANGHAI, TOKEN

OTHER_EVENTS = """
[bot]
account_name = "示例社区"
timezone = "Asia/Shanghai"

[[events]]
id = "spring"
series = "示例 Meetup 第一期"
title = "数据库之夜"
starts_at = 2031-04-12T19:00:00+08:00
ends_at = 2031-04-12T21:30:00+08:00
venue = "上海市徐汇区示例路 1 号"
format = "线下"
capacity = 30
reminders = ["3h"]
slides_url = "https://example.org/slides"
replay_url = "https://example.org/replay"

[[events.talks]]
title = "索引的秘密"
speaker = "张三"
starts_at = 2031-04-12T19:10:00+08:00
ends_at = 2031-04-12T20:00:00+08:00

[[events.talks]]
title = "事务隔离级别"
speaker = "李四"
starts_at = 2031-04-12T20:10:00+08:00
ends_at = 2031-04-12T21:00:00+08:00
slides_url = "https://example.org/slides/2"

[[events]]
id = "autumn"
series = "示例 Meetup 第二期"
title = "缓存与队列"
starts_at = 2031-10-01T14:00:00
ends_at = 2031-10-01T16:00:00
venue = "杭州市西湖区示例大道 2 号"
capacity = 50

[keywords]
agenda = ["议程"]
time = ["时间", "几点"]
venue = ["地点"]
materials = ["课件", "回放"]
livestream = ["直播"]
now_next = ["现在"]
help = ["帮助"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def other_wechat(make_settings, make_app, tmp_path, clock):
    settings = make_settings(config_path=write(tmp_path, OTHER_EVENTS))
    clock.set(datetime(2031, 4, 1, 9, 0, tzinfo=SHANGHAI))
    with TestClient(make_app(settings)) as client:
        yield WeChatSimulator(client, TOKEN)


def test_the_shipped_config_holds_the_announced_meetup():
    content = load_content(REPO_ROOT / "config.toml")
    (event,) = content.events
    assert event.series == "火山引擎开发者社区 Meetup 第十期"
    assert event.starts_at == datetime(2023, 3, 26, 14, 0, tzinfo=SHANGHAI)
    assert [talk.speaker for talk in event.talks] == ["李玉光", "王万兴", "郭海青", "赵亮"]
    assert all(talk.abstract and talk.outline for talk in event.talks)


def test_a_different_config_changes_the_answers(other_wechat):
    agenda = other_wechat.send_text("o-1", "议程").content
    assert "索引的秘密" in agenda and "19:10" in agenda
    assert "李玉光" not in agenda
    assert "上海市徐汇区示例路 1 号" in other_wechat.send_text("o-1", "地点").content
    assert "2031年4月12日（周六）19:00–21:30" in other_wechat.send_text("o-1", "时间").content
    assert "示例社区" in other_wechat.send_text("o-1", "帮助").content


def test_the_current_event_is_the_next_not_ended_then_the_most_recent(other_wechat, clock):
    clock.set(datetime(2031, 5, 1, 9, 0, tzinfo=SHANGHAI))
    assert "杭州市西湖区示例大道 2 号" in other_wechat.send_text("o-1", "地点").content
    clock.set(datetime(2032, 1, 1, 9, 0, tzinfo=SHANGHAI))
    answer = other_wechat.send_text("o-1", "时间").content
    assert "缓存与队列" in answer and "结束" in answer


def test_naive_times_take_the_bot_timezone(tmp_path):
    autumn = load_content(write(tmp_path, OTHER_EVENTS)).event_by_id("autumn")
    assert autumn.starts_at == datetime(2031, 10, 1, 14, 0, tzinfo=SHANGHAI)


def test_now_and_next_with_talk_times(other_wechat, clock):
    clock.set(datetime(2031, 4, 12, 19, 30, tzinfo=SHANGHAI))
    answer = other_wechat.send_text("o-1", "现在讲到哪了").content
    assert "正在分享：《索引的秘密》— 张三" in answer
    assert "下一场：20:10《事务隔离级别》— 李四" in answer


def test_materials_links_after_the_event_even_when_the_next_is_announced(other_wechat, clock):
    clock.set(datetime(2031, 4, 13, 9, 0, tzinfo=SHANGHAI))
    answer = other_wechat.send_text("o-1", "课件").content
    assert "课件：https://example.org/slides" in answer
    assert "回放：https://example.org/replay" in answer
    assert "https://example.org/slides/2" in answer


def test_an_event_without_livestream_says_so(other_wechat):
    assert "没有线上直播" in other_wechat.send_text("o-1", "直播").content


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda t: t.replace('venue = "上海市徐汇区示例路 1 号"\n', ""), "events[0].venue"),
        (lambda t: t.replace("starts_at = 2031-04-12T19:00:00+08:00", "starts_at = \"next tuesday\""), "events[0].starts_at"),
        (lambda t: t.replace('reminders = ["3h"]', 'reminders = ["3 weeks"]'), "events[0].reminders[0]"),
        (lambda t: t.replace('id = "autumn"', 'id = "spring"'), "duplicate event id 'spring'"),
        (lambda t: t.replace("ends_at = 2031-04-12T21:30:00+08:00", "ends_at = 2031-04-12T18:00:00+08:00"), "ends_at must be after starts_at"),
        (lambda t: t.replace('timezone = "Asia/Shanghai"', 'timezone = "Mars/Olympus"'), "bot.timezone"),
        (lambda t: t.replace("capacity = 30", "capacity = -1"), "events[0].capacity"),
        (lambda t: t + "\n[surprise]\nx = 1\n", "surprise"),
        (lambda t: t.replace("[bot]", "[bot"), "not valid TOML"),
    ],
    ids=["missing-field", "bad-date", "unknown-offset-unit", "duplicate-id", "ends-before-start", "bad-timezone",
         "negative-capacity", "unknown-section", "broken-toml"],
)
def test_invalid_config_is_refused_naming_the_field(tmp_path, edit, field):
    with pytest.raises(ConfigError) as error:
        load_content(write(tmp_path, edit(OTHER_EVENTS)))
    assert field in str(error.value)


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(config_path=tmp_path / "nope.toml")


def test_a_malformed_aes_key_is_refused():
    with pytest.raises(ConfigError, match="wechat_encoding_aes_key"):
        load_settings(config_path=REPO_ROOT / "config.toml", wechat_encoding_aes_key="short")


def test_environment_variables_use_the_documented_names(monkeypatch):
    monkeypatch.setenv("WECHAT_TOKEN", "from-env")
    monkeypatch.setenv("EVENTBOT_ADMIN_OPENIDS", "o-a, o-b,")
    monkeypatch.setenv("EVENTBOT_CONFIG", str(REPO_ROOT / "config.toml"))
    monkeypatch.setenv("EVENTBOT_NOW", "2023-03-20T10:00:00+08:00")
    settings = load_settings()
    assert settings.wechat_token == "from-env"
    assert settings.admin_openids == frozenset({"o-a", "o-b"})
    assert settings.now_override == datetime(2023, 3, 20, 10, 0, tzinfo=SHANGHAI)


@pytest.mark.parametrize(("text", "delta"), [("1d", timedelta(days=1)), ("2h", timedelta(hours=2)), ("45m", timedelta(minutes=45)), ("30s", timedelta(seconds=30))])
def test_reminder_offsets(text, delta):
    assert parse_offset(text) == delta


def test_the_app_runs_the_scheduler_unless_the_environment_turns_it_off(monkeypatch):
    monkeypatch.setenv("EVENTBOT_CONFIG", str(REPO_ROOT / "config.toml"))
    monkeypatch.delenv("EVENTBOT_RUN_SCHEDULER", raising=False)
    assert load_settings().run_scheduler is True

    monkeypatch.setenv("EVENTBOT_RUN_SCHEDULER", "0")
    assert load_settings().run_scheduler is False
