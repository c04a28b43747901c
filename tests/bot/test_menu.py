"""The custom menu: validated against WeChat's limits at load, pushed to and read from the fake WeChat API."""

from __future__ import annotations

import uuid

import pytest
from typer.testing import CliRunner

from bot.cli import app as cli
from bot.menu import menu_body, same_menu
from models.content import ConfigError, MenuConfig, load_content
from tests.conftest import FAKE_APP_ID, FAKE_APP_SECRET, REPO_ROOT

SHIPPED = load_content(REPO_ROOT / "config.toml")
MENU_CREATE = "/cgi-bin/menu/create"


def click(name: str, key: str = "HELP") -> dict:
    return {"name": name, "type": "click", "key": key}


def menu(*buttons: dict, **mappings) -> MenuConfig:
    return MenuConfig(buttons=list(buttons), click_topics={"HELP": "help", "AGENDA": "agenda"}, **mappings)


# --- the body WeChat receives ------------------------------------------------------------------------


def test_the_body_nests_sub_buttons_and_gives_each_action_its_key_or_url():
    configured = menu(
        {"name": "活动", "sub_buttons": [click("议程", "AGENDA"), {"name": "原文", "type": "view", "url": "https://example.org/a"}]},
        {"name": "签到", "type": "scancode_waitmsg", "key": "CHECKIN_SCAN"},
        click("帮助"),
    )
    assert menu_body(configured) == {
        "button": [
            {
                "name": "活动",
                "sub_button": [
                    {"type": "click", "name": "议程", "key": "AGENDA"},
                    {"type": "view", "name": "原文", "url": "https://example.org/a"},
                ],
            },
            {"type": "scancode_waitmsg", "name": "签到", "key": "CHECKIN_SCAN"},
            {"type": "click", "name": "帮助", "key": "HELP"},
        ]
    }


def test_the_shipped_menu_maps_every_click_to_a_topic_or_a_rule():
    rule_names = {rule.name for rule in SHIPPED.rules}
    body = menu_body(SHIPPED.menu)
    keys = [sub["key"] for button in body["button"] for sub in button.get("sub_button", [button]) if sub["type"] == "click"]
    assert keys and all(key in SHIPPED.menu.click_topics or SHIPPED.menu.click_rules.get(key) in rule_names for key in keys)


def test_a_live_menu_with_empty_sub_button_lists_is_the_same_menu():
    configured = menu({"name": "活动", "sub_buttons": [click("议程", "AGENDA")]}, click("帮助"))
    live = {"button": [{"name": "活动", "sub_button": [{**click("议程", "AGENDA"), "sub_button": []}]}, {**click("帮助"), "sub_button": []}]}
    assert same_menu(live, configured)
    assert not same_menu({"button": [click("帮助")]}, configured)


# --- WeChat's limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("buttons", "message"),
    [
        ([click("一"), click("二"), click("三"), click("四")], "at most 3 top-level buttons, got 4"),
        ([{"name": "活动", "sub_buttons": [click(str(n)) for n in range(6)]}], "at most 5 sub-buttons under a button, got 6"),
        ([click("活动信息与议程")], "'活动信息与议程' is 21 bytes; WeChat allows 16"),
        ([{"name": "活动", "sub_buttons": [click("很" * 21)]}], "is 63 bytes; WeChat allows 60"),
        ([{"name": "签到", "type": "scancode_waitmsg", "key": "K" * 129}], "longer than WeChat's 128 bytes"),
        ([{"name": "原文", "type": "view"}], 'a view button needs url = "https://…"'),
        ([{"name": "签到", "type": "scancode_waitmsg"}], "a scancode_waitmsg button needs a key"),
        ([{"name": "活动"}], "needs a type: click, view or scancode_waitmsg"),
        ([{"name": "活动", "type": "click", "key": "HELP", "sub_buttons": [click("议程")]}], "remove its type, key and url"),
        ([{"name": "位置", "type": "location_select", "key": "WHERE"}], "buttons.0.type"),
        ([click("议程", "UNMAPPED")], "buttons[0].key: 'UNMAPPED' answers nothing"),
        ([{"name": "活动", "sub_buttons": [click("议程", "UNMAPPED")]}], "buttons[0].sub_buttons[0].key: 'UNMAPPED'"),
    ],
    ids=["four-top-buttons", "six-sub-buttons", "long-top-name", "long-sub-name", "long-key", "view-without-url",
         "scan-without-key", "no-type", "type-and-sub-buttons", "unsupported-type", "unmapped-click", "unmapped-sub-click"],
)
def test_a_menu_beyond_wechats_limits_is_refused_with_a_clear_message(buttons, message):
    with pytest.raises(ValueError) as refused:
        menu(*buttons)
    assert message in str(refused.value)


def test_names_at_exactly_the_byte_limits_are_accepted():
    menu({"name": "活动信息" + "a" * 4, "sub_buttons": [click("很" * 20)]})  # 16 and 60 bytes


def test_check_config_names_the_button_beyond_the_limits(monkeypatch, tmp_path):
    config = (REPO_ROOT / "config.toml").read_text(encoding="utf-8").replace('name = "报名参会"', 'name = "报名参会与我的报名"')
    path = tmp_path / "config.toml"
    path.write_text(config, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"menu\.buttons\[1\]\.name: '报名参会与我的报名' is 27 bytes"):
        load_content(path)
    monkeypatch.setenv("EVENTBOT_CONFIG", str(path))
    result = CliRunner().invoke(cli, ["check-config"])
    assert result.exit_code == 2
    assert "menu.buttons[1].name" in result.output


# --- push and show against the fake WeChat API -------------------------------------------------------


@pytest.fixture
def api_env(monkeypatch, fake_wechat, database_url, redis_url):
    """The CLI's environment: the test database and the fake WeChat API's credentials and address."""
    monkeypatch.setenv("EVENTBOT_CONFIG", str(REPO_ROOT / "config.toml"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("EVENTBOT_REDIS_NAMESPACE", f"test-menu-{uuid.uuid4().hex[:10]}")  # no token shared between tests
    monkeypatch.setenv("WECHAT_APP_ID", FAKE_APP_ID)
    monkeypatch.setenv("WECHAT_APP_SECRET", FAKE_APP_SECRET)
    monkeypatch.setenv("WECHAT_API_BASE_URL", fake_wechat.base_url)
    return fake_wechat


def test_show_before_any_push_says_no_menu_is_live(api_env):
    result = CliRunner().invoke(cli, ["menu", "show"])
    assert result.exit_code == 0, result.output
    assert "no custom menu is live" in result.output


def test_push_creates_the_configured_menu_and_show_reads_it_back(api_env):
    pushed = CliRunner().invoke(cli, ["menu", "push"])
    assert pushed.exit_code == 0, pushed.output
    assert "menu pushed (3 buttons)" in pushed.output
    assert api_env.stats()["calls"][MENU_CREATE] == 1
    shown = CliRunner().invoke(cli, ["menu", "show"])
    assert shown.exit_code == 0, shown.output
    assert "活动信息\n  - 议程嘉宾  [click] AGENDA → topic agenda" in shown.output
    assert "活动群  [click] GROUP → rule group" in shown.output
    assert "(the same as config.toml)" in shown.output


def test_push_reports_wechats_refusal(api_env):
    api_env.inject("errcode", errcode=40018, path=MENU_CREATE)
    result = CliRunner().invoke(cli, ["menu", "push"])
    assert result.exit_code == 1
    assert "WeChat refused the call: errcode 40018" in result.output


def test_an_invalid_menu_is_never_sent(api_env, monkeypatch, tmp_path):
    config = (REPO_ROOT / "config.toml").read_text(encoding="utf-8").replace('key = "HELP"\n', 'key = "NOT_MAPPED"\n')
    path = tmp_path / "config.toml"
    path.write_text(config, encoding="utf-8")
    monkeypatch.setenv("EVENTBOT_CONFIG", str(path))
    result = CliRunner().invoke(cli, ["menu", "push"])
    assert result.exit_code == 2
    assert "'NOT_MAPPED' answers nothing" in result.output
    assert MENU_CREATE not in api_env.stats()["calls"]


def test_push_needs_the_accounts_credentials(api_env, monkeypatch):
    monkeypatch.setenv("WECHAT_APP_SECRET", "")
    result = CliRunner().invoke(cli, ["menu", "push"])
    assert result.exit_code == 2
    assert "WECHAT_APP_ID and WECHAT_APP_SECRET must be set" in result.output
