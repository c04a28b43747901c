"""The form comes from ``[registration]`` in config.toml: fields, order, prompts, limits; bad values name the field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.devtools.simulator import WeChatSimulator
from models import texts
from models.content import ConfigError, load_content
from tests.conftest import REPO_ROOT, TOKEN
from tests.registration_steps import registration_of

SHIPPED = (REPO_ROOT / "config.toml").read_text(encoding="utf-8")
SHIPPED_FIELDS = 'fields = ["name", "phone", "company", "title"]'


def config_with(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    """The shipped config.toml with each (old, new) replacement made, written to a file of its own."""
    text = SHIPPED
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_fields_order_and_prompts_come_from_the_config(tmp_path, make_settings, make_app):
    path = config_with(
        tmp_path,
        (SHIPPED_FIELDS, 'fields = ["phone", "name"]'),
        ('phone = "请回复你的手机号（11 位中国大陆手机号，用于活动通知）："', 'phone = "留个手机号吧："'),
        ('format = "线下+线上同步直播"', 'format = "线下"'),
        ("name = 32", "name = 4"),
    )
    app = make_app(make_settings(config_path=path))
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)

        wechat.send_text("o-1", "报名")
        assert wechat.send_text("o-1", "同意").content.endswith("留个手机号吧：")
        assert "请回复你的姓名" in wechat.send_text("o-1", "13812345678").content
        assert wechat.send_text("o-1", "欧阳娜娜娜").content.startswith("姓名最多 4 个字")
        summary = wechat.send_text("o-1", "欧阳娜娜").content
        assert "公司" not in summary and "参加方式" not in summary
        wechat.send_text("o-1", "确认")

    registration = registration_of(app, "o-1")
    assert (registration.name, registration.phone, registration.company, registration.attendance) == (
        "欧阳娜娜", "13812345678", None, "onsite",
    )


@pytest.mark.parametrize(
    ("replacement", "named"),
    [
        ((SHIPPED_FIELDS, 'fields = ["name", "name"]'), "registration.fields"),
        ((SHIPPED_FIELDS, 'fields = ["name", "email"]'), "registration.fields"),
        ((SHIPPED_FIELDS, "fields = []"), "registration.fields"),
        (('form_expires_after = "30m"', 'form_expires_after = "soon"'), "registration.form_expires_after"),
        (("company = 64", "company = 500"), "registration.max_lengths.company"),
        (("walk_in = false", "walk_in = false\nregistration_closes_at = 2023-03-27T10:00:00+08:00"), "events[0]"),
    ],
)
def test_bad_registration_settings_stop_start_up_naming_the_field(tmp_path, replacement, named):
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_content(config_with(tmp_path, replacement))


def test_a_form_whose_step_left_the_configuration_starts_again(tmp_path, wechat, make_settings, make_app):
    for text in ["报名", "同意", "张三", "13812345678"]:
        wechat.send_text("o-1", text)  # now at the company question
    path = config_with(tmp_path, (SHIPPED_FIELDS, 'fields = ["name", "phone"]'))

    with TestClient(make_app(make_settings(config_path=path))) as client:
        reply = WeChatSimulator(client, TOKEN).send_text("o-1", "火山引擎").content

    assert reply.startswith(texts.FORM_RESTART) and reply.endswith("请回复你的姓名：")
