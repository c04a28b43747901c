"""The organisers' keyword rules, welcome and default reply: configured in config.toml, answered through the webhook."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bot.cli import app as cli
from bot.devtools.simulator import WeChatSimulator
from handlers.rules import RuleMatcher
from models import texts
from models.content import ConfigError, Content, load_content
from tests.conftest import BEFORE_EVENT, REPO_ROOT, SHANGHAI, TOKEN

SHIPPED = load_content(REPO_ROOT / "config.toml")


def content_with(rules: list[dict], **changes) -> Content:
    """The shipped config with other rules (and no menu keys for the shipped ones), validated like a file."""
    data = SHIPPED.model_dump(by_alias=True)
    data["menu"] = {"click_topics": SHIPPED.menu.click_topics}
    return Content(**{**data, "rules": rules, **changes}).localise()


def rule(*keywords, reply="规则的回答", **fields) -> dict:
    return {"keywords": list(keywords), "reply": reply if isinstance(reply, dict) else {"text": reply}, **fields}


@pytest.fixture
def chat_with(make_settings, make_app):
    """A simulated WeChat talking to an app built on the given content."""
    with ExitStack() as stack:

        def build(content: Content) -> WeChatSimulator:
            client = stack.enter_context(TestClient(make_app(make_settings(content=content))))
            return WeChatSimulator(client, TOKEN)

        yield build


# --- match modes -------------------------------------------------------------------------------------


def test_contains_keyword_is_found_anywhere_ignoring_case_width_spaces_and_punctuation(chat_with):
    wechat = chat_with(content_with([rule("workshop", reply="有的")]))
    assert wechat.send_text("o-1", "现场有 Work-Shop 吗？").content == "有的"
    assert wechat.send_text("o-1", "ＷＯＲＫＳＨＯＰ").content == "有的"


def test_exact_keyword_answers_only_the_whole_message(chat_with):
    wechat = chat_with(content_with([rule("群", mode="exact", reply="群二维码在文末")]))
    assert wechat.send_text("o-1", "群！").content == "群二维码在文末"
    assert wechat.send_text("o-1", "群里有人吗").content != "群二维码在文末"


def test_regex_keyword_is_searched_in_the_message_as_typed_ignoring_case(chat_with):
    wechat = chat_with(content_with([rule({"word": r"^vip\d{3}$", "mode": "regex"}, reply="贵宾通道")]))
    assert wechat.send_text("o-1", "VIP123").content == "贵宾通道"
    assert wechat.send_text("o-1", "ｖｉｐ１２３").content == "贵宾通道"  # full-width forms folded first
    assert wechat.send_text("o-1", "vip12").content != "贵宾通道"


@pytest.mark.parametrize(
    ("text", "answer"),
    [("svip33", "回引用"), ("svip34", None), ("暗 号", "全局标志"), ("普通1", "普通"), ("议程", None)],
)
def test_regex_keywords_with_groups_or_global_flags_match_like_any_other(text, answer):
    # Patterns with groups or global flags cannot join the combined screen: they are searched on their own.
    matcher = RuleMatcher(
        content_with(
            [
                rule({"word": r"^(会员)卡$", "mode": "regex"}, reply="会员卡"),
                rule({"word": r"^(vip|svip)(\d)\2$", "mode": "regex"}, reply="回引用"),
                rule({"word": r"(?x) 暗 \s* 号", "mode": "regex"}, reply="全局标志"),
                rule({"word": r"^普通\d$", "mode": "regex"}, reply="普通"),
            ]
        ).rules
    )
    found = matcher.match(text, BEFORE_EVENT, "meetup-10")
    assert (found.rule.reply.text if found else None) == answer


def test_a_regex_keyword_can_answer_text_of_only_punctuation(chat_with):
    wechat = chat_with(content_with([rule({"word": r"^\?+$", "mode": "regex"}, reply="有什么可以帮你？")]))
    assert wechat.send_text("o-1", "？？？").content == "有什么可以帮你？"


def test_one_rule_may_mix_match_modes(chat_with):
    wechat = chat_with(content_with([rule("电脑", {"word": "^带.*本$", "mode": "regex"}, reply="带电脑")]))
    assert wechat.send_text("o-1", "要带电脑吗").content == "带电脑"
    assert wechat.send_text("o-1", "带笔记本").content == "带电脑"


# --- order and priority ------------------------------------------------------------------------------


def test_a_rule_answers_before_the_built_in_topics(chat_with):
    wechat = chat_with(content_with([rule("议程", reply="议程请看推文")]))
    assert wechat.send_text("o-1", "议程").content == "议程请看推文"


def test_without_rules_the_built_in_topic_answers(chat_with):
    wechat = chat_with(content_with([]))
    assert "李玉光" in wechat.send_text("o-1", "议程").content


@pytest.mark.parametrize(
    ("rules", "text", "answer"),
    [
        ([rule("电脑", reply="第一条"), rule("电脑包", reply="第二条")], "电脑包", "第一条"),
        ([rule("电脑包", reply="第一条"), rule("电脑", reply="第二条")], "电脑包", "第一条"),
        ([rule("电脑包", reply="第一条"), rule("电脑", reply="第二条")], "电脑", "第二条"),
        ([rule({"word": "电", "mode": "regex"}, reply="第一条"), rule("电脑", reply="第二条")], "电脑", "第一条"),
        ([rule("脑", reply="第一条"), rule("电脑", mode="exact", reply="第二条")], "电脑", "第一条"),
    ],
    ids=["shorter-first", "longer-first", "only-shorter-present", "regex-first", "contains-before-exact"],
)
def test_the_first_matching_rule_in_the_file_wins(chat_with, rules, text, answer):
    wechat = chat_with(content_with(rules))
    assert wechat.send_text("o-1", text).content == answer


def test_a_disabled_rule_is_skipped_but_kept(chat_with):
    content = content_with([rule("议程", reply="旧的回答", enabled=False), rule("议程", reply="新的回答")])
    assert len(content.rules) == 2
    assert chat_with(content).send_text("o-1", "议程").content == "新的回答"


# --- time windows and event scope --------------------------------------------------------------------


def test_a_rule_answers_only_inside_its_time_window(chat_with, clock):
    window = {"from": datetime(2023, 3, 21, 9, 0), "until": datetime(2023, 3, 21, 18, 0)}  # naive: the bot's zone
    wechat = chat_with(content_with([rule("暗号", reply="天王盖地虎", **window)]))
    assert wechat.send_text("o-1", "暗号").content != "天王盖地虎"
    clock.set(datetime(2023, 3, 21, 9, 0, tzinfo=SHANGHAI))
    assert wechat.send_text("o-1", "暗号").content == "天王盖地虎"
    clock.set(datetime(2023, 3, 21, 17, 59, tzinfo=SHANGHAI))
    assert wechat.send_text("o-1", "暗号").content == "天王盖地虎"
    clock.set(datetime(2023, 3, 21, 18, 0, tzinfo=SHANGHAI))
    assert wechat.send_text("o-1", "暗号").content != "天王盖地虎"


def test_a_rule_scoped_to_an_event_answers_while_that_event_is_current(chat_with, clock):
    meetup_10 = SHIPPED.events[0].model_dump()
    meetup_11 = {
        **meetup_10,
        "id": "meetup-11",
        "starts_at": meetup_10["starts_at"] + timedelta(days=28),
        "ends_at": meetup_10["ends_at"] + timedelta(days=28),
    }
    content = content_with(
        [rule("暗号", reply="第十期的回答", event="meetup-10"), rule("暗号", reply="第十一期的回答", event="meetup-11")],
        events=[meetup_10, meetup_11],
    )
    wechat = chat_with(content)
    assert wechat.send_text("o-1", "暗号").content == "第十期的回答"
    clock.set(datetime(2023, 3, 27, 10, 0, tzinfo=SHANGHAI))  # meetup-10 is over: meetup-11 is current
    assert wechat.send_text("o-1", "暗号").content == "第十一期的回答"


# --- replies -----------------------------------------------------------------------------------------


def test_a_news_rule_replies_with_one_article(chat_with):
    news = {"title": "报名入口", "description": "点击报名", "picture_url": "https://example.org/p.png", "url": "https://example.org/s"}
    reply = chat_with(content_with([rule("入口", reply={"news": news})])).send_text("o-1", "入口在哪")
    assert reply.msg_type == "news"
    assert reply.articles == [{"Title": "报名入口", "Description": "点击报名", "PicUrl": "https://example.org/p.png", "Url": "https://example.org/s"}]


def test_an_image_rule_replies_with_the_image_once_its_media_id_is_set(chat_with):
    waiting = {"text": "二维码在文末", "image": {"media_id": ""}}
    uploaded = {"text": "二维码在文末", "image": {"media_id": "MEDIA-QR"}}
    assert chat_with(content_with([rule("进群", reply=waiting)])).send_text("o-1", "进群").content == "二维码在文末"
    reply = chat_with(content_with([rule("进群", reply=uploaded)])).send_text("o-2", "进群")
    assert (reply.msg_type, reply.media_id) == ("image", "MEDIA-QR")


def test_a_menu_click_mapped_to_a_rule_answers_with_it(chat_with):
    content = content_with([rule("进群", reply="二维码在文末", name="group")], menu={"click_rules": {"GROUP": "group"}})
    assert chat_with(content).send_event("o-1", "CLICK", "GROUP").content == "二维码在文末"


def test_a_menu_click_on_a_disabled_rule_gets_the_help_menu(chat_with):
    content = content_with(
        [rule("进群", reply="二维码在文末", name="group", enabled=False)], menu={"click_rules": {"GROUP": "group"}}
    )
    assert "回复数字或关键词" in chat_with(content).send_event("o-1", "CLICK", "GROUP").content


# --- the shipped FAQ ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("到场需要带电脑吗？", "到场同学最好带着电脑"),
        ("有礼品吗", "精美礼品"),
        ("现场可以动手实操吗", "动手实操机会"),
        ("怎么进活动群", "扫码进入活动群"),
        ("群", "扫码进入活动群"),
        ("需要门票吗", "回复「报名」"),
    ],
)
def test_the_shipped_faq_answers_from_the_default_config(wechat, question, expected):
    assert expected in wechat.send_text("o-faq", question).content


def test_texts_with_register_words_open_the_form_rather_than_the_faq(wechat):
    assert "回复「报名」" not in wechat.send_text("o-faq", "怎么报名").content


def test_the_shipped_group_rule_sends_the_qr_image_once_configured(chat_with):
    data = SHIPPED.model_dump(by_alias=True)
    for configured in data["rules"]:
        if configured["name"] == "group":
            configured["reply"]["image"] = {"media_id": "MEDIA-GROUP-QR"}
    reply = chat_with(Content(**data).localise()).send_text("o-1", "加群")
    assert (reply.msg_type, reply.media_id) == ("image", "MEDIA-GROUP-QR")


def test_the_shipped_menu_button_answers_with_its_rule(wechat):
    assert "到场同学最好带着电脑" in wechat.send_event("o-1", "CLICK", "LAPTOP").content


# --- many rules --------------------------------------------------------------------------------------


def _many_rules(count: int = 200, per_rule: int = 10) -> list[dict]:
    """``count`` rules of ``per_rule`` keywords, every mode represented; keyword ``k`` of rule ``r`` is unique."""
    rules = []
    for number in range(count):
        words: list = [f"问题{number}号{index}项" for index in range(per_rule - 2)]
        words.append({"word": f"整句{number}号", "mode": "exact"})
        words.append({"word": rf"^编号\s*{number}号$", "mode": "regex"})
        rules.append(rule(*words, reply=f"回答{number}"))
    return rules


def test_two_hundred_rules_of_ten_keywords_each_answer_correctly():
    matcher = RuleMatcher(content_with(_many_rules()).rules)
    for number in range(200):
        for index in range(8):
            assert matcher.match(f"请问问题{number}号{index}项？", BEFORE_EVENT, "meetup-10").index == number
        assert matcher.match(f"整句{number}号", BEFORE_EVENT, "meetup-10").index == number
        assert matcher.match(f"请问整句{number}号", BEFORE_EVENT, "meetup-10") is None
        assert matcher.match(f"编号 {number}号", BEFORE_EVENT, "meetup-10").index == number
    assert matcher.match("议程", BEFORE_EVENT, "meetup-10") is None


def test_two_hundred_rules_load_into_the_app(chat_with):
    wechat = chat_with(content_with(_many_rules()))
    assert wechat.send_text("o-1", "问题199号7项").content == "回答199"


# --- welcome and default reply -----------------------------------------------------------------------


def test_the_built_in_welcome_is_kept_without_a_configured_one(wechat):
    reply = wechat.send_event("o-new", "subscribe")
    assert "感谢关注" in reply.content and "回复数字或关键词" in reply.content


def test_a_configured_welcome_replaces_the_built_in_one(chat_with):
    wechat = chat_with(content_with([], welcome={"text": "欢迎加入社区！"}))
    assert wechat.send_event("o-new", "subscribe").content == "欢迎加入社区！"


def test_the_default_reply_is_sent_at_most_once_per_hour_per_follower(wechat, clock):
    assert "回复数字或关键词" in wechat.send_text("o-1", "今天天气不错").content
    assert wechat.send_text("o-1", "随便问问").content == texts.HELP_POINTER
    assert "回复数字或关键词" in wechat.send_text("o-2", "随便问问").content  # another follower
    clock.advance(timedelta(minutes=59))
    assert wechat.send_text("o-1", "还是没懂").content == texts.HELP_POINTER
    clock.advance(timedelta(minutes=1))
    assert "回复数字或关键词" in wechat.send_text("o-1", "还是没懂").content


def test_asking_for_help_is_never_throttled(wechat):
    wechat.send_text("o-1", "今天天气不错")
    assert "回复数字或关键词" in wechat.send_text("o-1", "帮助").content


def test_a_configured_default_reply_and_interval(chat_with, clock):
    wechat = chat_with(content_with([], default_reply={"text": "工作人员会尽快回复。", "every": "10m"}))
    assert wechat.send_text("o-1", "今天天气不错").content == "工作人员会尽快回复。"
    clock.advance(timedelta(minutes=9))
    assert wechat.send_text("o-1", "今天天气不错").content == texts.HELP_POINTER
    clock.advance(timedelta(minutes=1))
    assert wechat.send_text("o-1", "今天天气不错").content == "工作人员会尽快回复。"


# --- validation --------------------------------------------------------------------------------------


def _write_config(tmp_path, rules_toml: str):
    path = tmp_path / "config.toml"
    path.write_text((REPO_ROOT / "config.toml").read_text(encoding="utf-8") + rules_toml, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("rules_toml", "message"),
    [
        ('[[rules]]\nkeywords = [{ word = "(未闭合", mode = "regex" }]\nreply.text = "x"\n', "rules[5].keywords[0]: invalid regular expression"),
        ('[[rules]]\nkeywords = [{ word = "x", mode = "fuzzy" }]\nreply.text = "x"\n', "rules[5].keywords[0].mode"),
        ('[[rules]]\nmode = "fuzzy"\nkeywords = ["x"]\nreply.text = "x"\n', "rules[5].mode"),
        ('[[rules]]\nkeywords = ["x"]\nreply.text = "  "\n', "rules[5].reply: empty reply"),
        ('[[rules]]\nkeywords = ["x"]\n[rules.reply.image]\nmedia_id = ""\n', "rules[5].reply: empty reply"),
        ('[[rules]]\nkeywords = []\nreply.text = "x"\n', "rules[5].keywords"),
        ('[[rules]]\nkeywords = ["x"]\nreply.text = "x"\nevent = "meetup-99"\n', "rules[5].event: no event has id 'meetup-99'"),
        (
            '[[rules]]\nkeywords = ["x"]\nreply.text = "x"\nfrom = 2023-03-21T10:00:00\nuntil = 2023-03-21T09:00:00\n',
            "rules[5].until: must be after from",
        ),
        ('[[rules]]\nname = "laptop"\nkeywords = ["x"]\nreply.text = "x"\n', "rules[5].name: duplicate rule name"),
        ('[[rules]]\nkeywords = ["x"]\nreply.text = "x"\nweight = 3\n', "rules[5].weight"),
    ],
    ids=["bad-regex", "unknown-keyword-mode", "unknown-rule-mode", "blank-text", "image-without-media-id", "no-keywords",
         "unknown-event", "window-backwards", "duplicate-name", "unknown-field"],
)
def test_a_bad_rule_is_refused_with_its_position(tmp_path, rules_toml, message):
    with pytest.raises(ConfigError) as refused:
        load_content(_write_config(tmp_path, rules_toml))
    assert message in str(refused.value)


def test_a_keyword_of_only_punctuation_is_refused_when_the_config_is_loaded(tmp_path):
    shipped = (REPO_ROOT / "config.toml").read_text(encoding="utf-8")
    first_keywords = 'keywords = ["电脑", '
    assert shipped.index(first_keywords) > shipped.index("[[rules]]")  # it is rules[0]'s
    path = tmp_path / "config.toml"
    path.write_text(shipped.replace(first_keywords, 'keywords = ["？！", "电脑", ', 1), encoding="utf-8")

    with pytest.raises(ConfigError) as refused:
        load_content(path)

    assert "rules[0].keywords[0]: '？！' is only spaces and punctuation" in str(refused.value)


def test_an_exact_keyword_of_only_punctuation_is_refused_too():
    with pytest.raises(ValueError, match=r"rules\.0\.keywords\.1\n.*'？！' is only spaces and punctuation"):
        content_with([rule("电脑", {"word": "？！", "mode": "exact"})])


def test_a_menu_key_mapped_to_a_missing_rule_is_refused():
    with pytest.raises(ValueError, match="menu.click_rules.GROUP: no rule is named 'group'"):
        content_with([], menu={"click_rules": {"GROUP": "group"}})


def test_check_config_reports_the_bad_rule_by_position(monkeypatch, tmp_path):
    monkeypatch.setenv("EVENTBOT_CONFIG", str(_write_config(tmp_path, '[[rules]]\nkeywords = ["x", "（）"]\nreply.text = "x"\n')))
    result = CliRunner().invoke(cli, ["check-config"])
    assert result.exit_code == 2
    assert "rules[5].keywords[1]" in result.output


def test_check_config_counts_rules_and_menu_buttons(monkeypatch):
    monkeypatch.setenv("EVENTBOT_CONFIG", str(REPO_ROOT / "config.toml"))
    result = CliRunner().invoke(cli, ["check-config"])
    assert result.exit_code == 0, result.output
    assert f"rules: {len(SHIPPED.rules)} ({len(SHIPPED.rules)} enabled)" in result.output
    assert "menu: 3 buttons" in result.output


# --- eventbot rules test -----------------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch, tmp_path):
    monkeypatch.setenv("EVENTBOT_CONFIG", str(REPO_ROOT / "config.toml"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/must-stay-untouched.db")
    return tmp_path


def test_rules_test_names_the_rule_keyword_and_reply(cli_env):
    result = CliRunner().invoke(cli, ["rules", "test", "需要电脑吗？", "--now", "2023-03-20T10:00:00+08:00"])
    assert result.exit_code == 0, result.output
    assert "answered by: rule rules[0] 'laptop', keyword '电脑' (contains)" in result.output
    assert "到场同学最好带着电脑" in result.output
    assert not (cli_env / "must-stay-untouched.db").exists()


def test_rules_test_names_the_built_in_topic(cli_env):
    result = CliRunner().invoke(cli, ["rules", "test", "几点开始", "--now", "2023-03-25T12:00:00+08:00"])
    assert result.exit_code == 0, result.output
    assert "answered by: topic 'time'" in result.output
    assert "距离开始还有 1 天" in result.output


def test_rules_test_shows_the_default_reply_for_unmatched_text(cli_env):
    result = CliRunner().invoke(cli, ["rules", "test", "今天天气不错", "--now", "2023-03-20T10:00:00+08:00"])
    assert result.exit_code == 0, result.output
    assert "answered by: the default reply" in result.output


def test_rules_test_respects_the_rules_time_windows(monkeypatch, tmp_path):
    config = _write_config(tmp_path, '[[rules]]\nkeywords = ["暗号"]\nreply.text = "天王盖地虎"\nfrom = 2023-03-21T09:00:00\n')
    monkeypatch.setenv("EVENTBOT_CONFIG", str(config))
    before = CliRunner().invoke(cli, ["rules", "test", "暗号", "--now", "2023-03-20T10:00:00+08:00"])
    during = CliRunner().invoke(cli, ["rules", "test", "暗号", "--now", "2023-03-21T10:00:00+08:00"])
    assert "天王盖地虎" not in before.output
    assert "answered by: rule rules[5], keyword '暗号' (contains)" in during.output
