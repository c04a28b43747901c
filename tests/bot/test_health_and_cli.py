"""Health endpoints and the command line."""

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bot.cli import app as cli
from models import texts
from tests.conftest import REPO_ROOT


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_when_the_database_answers(client):
    assert client.get("/readyz").status_code == 200


def test_readyz_when_the_database_is_down(make_settings, make_app):
    app = make_app(make_settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none"))
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503


def test_check_config_lists_the_events(monkeypatch):
    monkeypatch.setenv("EVENTBOT_CONFIG", str(REPO_ROOT / "config.toml"))
    result = CliRunner().invoke(cli, ["check-config"])
    assert result.exit_code == 0, result.output
    assert "meetup-10" in result.output and "2023-03-26 14:00" in result.output


@pytest.mark.parametrize(
    ("changes", "warning"),
    [
        ({}, texts.REACH_WARNING),
        ({'[delivery.subscribe_templates]\nreminder = ""': '[delivery.subscribe_templates]\nreminder = "TPL-REMIND"'},
         texts.SUBSCRIBE_LINK_WARNING),
        ({'[delivery.subscribe_templates]\nreminder = ""': '[delivery.subscribe_templates]\nreminder = "TPL-REMIND"',
          '# public_base_url = "https://bot.example.org"': 'public_base_url = "https://bot.example.org"'}, None),
    ],
    ids=["no-template", "subscribe-without-link", "subscribe"],
)
def test_check_config_warns_in_chinese_what_will_not_arrive(monkeypatch, tmp_path, changes, warning):
    config = (REPO_ROOT / "config.toml").read_text(encoding="utf-8")
    for old, new in changes.items():
        assert old in config
        config = config.replace(old, new, 1)
    (tmp_path / "config.toml").write_text(config, encoding="utf-8")
    monkeypatch.setenv("EVENTBOT_CONFIG", str(tmp_path / "config.toml"))

    result = CliRunner().invoke(cli, ["check-config"])

    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if line.startswith("警告")] == ([f"警告：{warning}"] if warning else [])


def test_check_config_names_the_bad_field(monkeypatch, tmp_path):
    broken = tmp_path / "config.toml"
    broken.write_text((REPO_ROOT / "config.toml").read_text(encoding="utf-8").replace('reminders = ["1d", "2h"]', 'reminders = ["1w"]'), encoding="utf-8")
    monkeypatch.setenv("EVENTBOT_CONFIG", str(broken))
    result = CliRunner().invoke(cli, ["check-config"])
    assert result.exit_code == 2
    assert "events[0].reminders[0]" in result.output


def test_serve_refuses_to_start_without_a_token(monkeypatch):
    monkeypatch.setenv("EVENTBOT_CONFIG", str(REPO_ROOT / "config.toml"))
    monkeypatch.delenv("WECHAT_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 2
    assert "WECHAT_TOKEN is not set" in result.output


def test_chat_simulator_answers_as_the_bot_would_before_the_event(monkeypatch, tmp_path):
    monkeypatch.setenv("EVENTBOT_CONFIG", str(REPO_ROOT / "config.toml"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/chat.db")
    monkeypatch.delenv("REDIS_URL", raising=False)
    result = CliRunner().invoke(cli, ["chat", "--as", "o-cli", "--now", "2023-03-25T12:00:00+08:00"], input="几点开始\n/follow\n/quit\n")
    assert result.exit_code == 0, result.output
    assert "距离开始还有 1 天" in result.output
    assert "感谢关注" in result.output
