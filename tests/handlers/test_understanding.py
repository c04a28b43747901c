"""Each example of issue 20 (what followers really type), through signed XML posted to the real app with
the shipped config."""

from datetime import datetime, timedelta

import pytest

from bot.devtools.simulator import push_xml
from models import texts
from tests.conftest import SHANGHAI
from tests.registration_steps import register_via_chat, registration_of

STARTS = datetime(2023, 3, 26, 14, 0, tzinfo=SHANGHAI)
ENDS = datetime(2023, 3, 26, 17, 0, tzinfo=SHANGHAI)
NOT_FOUND = "抱歉，没有找到相关内容"
AGENDA = "议程（共 4 场分享）"
TIME = "2023年3月26日（周日）14:00–17:00"
VENUE = "大钟寺广场 1 号楼 3F-18 报告厅"
LIVESTREAM = "形式：线下+线上同步直播"
FORM_OPENED = "开始报名"


def ask(wechat, text: str, openid: str = "o-follower") -> str:
    reply = wechat.send_text(openid, text)
    assert reply.status == 200 and reply.msg_type == "text", reply.body
    return reply.content


@pytest.mark.parametrize(
    ("question", "answer_contains"),
    [
        ("幾點開始", TIME), ("時間", TIME), ("地點", VENUE), ("議程", AGENDA),
        ("what time does it start", TIME), ("address please", VENUE), ("venue", VENUE),
        ("地铁怎么走", VENUE), ("附近地铁站", VENUE), ("大钟寺怎么走", VENUE), ("哪个报告厅", VENUE),
        ("北京哪里", VENUE), ("活动多久", TIME),
        ("有没有讲 Kubernetes 的", "讲师：郭海青"), ("有大模型相关的吗", "《基于 Ray 的大模型离线推理》"),
        ("议陈", AGENDA), ("议呈", AGENDA),
    ],
)
def test_everyday_questions_get_their_topic(wechat, question, answer_contains):
    answer = ask(wechat, question)
    assert answer_contains in answer
    assert NOT_FOUND not in answer and "回复数字或关键词" not in answer


def test_a_question_about_large_models_lists_both_talks_numbered_as_in_the_agenda(wechat):
    answer = ask(wechat, "有大模型相关的吗")
    assert "2. 《基于 Ray 的大模型离线推理》" in answer and "4. 《大规模语言模型的挑战及训练/推理方案探讨》" in answer
    assert "讲师：赵亮" in ask(wechat, "4")


@pytest.mark.parametrize("question", ["免费吗", "要收费吗", "可以停车吗", "能带朋友吗"])
def test_questions_the_config_cannot_answer_go_to_the_organizers_not_to_not_found(wechat, question):
    assert ask(wechat, question).startswith(texts.PASSED_TO_ORGANIZERS)


def test_asking_for_a_person_says_how_questions_reach_the_organizers(wechat):
    assert ask(wechat, "人工客服") == texts.ASK_A_PERSON


@pytest.mark.parametrize("message", ["谢谢", "👍", "好的", "哈哈", "[微笑]", "/::)"])
def test_small_talk_gets_a_friendly_word_never_not_found(wechat, message):
    assert ask(wechat, message) in (texts.SMALL_TALK, texts.SMALL_TALK_THANKS)


def test_thanks_are_answered_with_you_are_welcome(wechat):
    assert ask(wechat, "谢谢") == texts.SMALL_TALK_THANKS


def test_hi_is_not_found_inside_nothing(wechat):
    ask(wechat, "今天天气不错")  # the default reply (the menu) is spent: unknown words now get the pointer
    assert ask(wechat, "Nothing") == texts.HELP_POINTER
    assert "回复数字或关键词" in ask(wechat, "hi there")


@pytest.mark.parametrize("question", ["可以线上参加吗", "不在北京能参加吗"])
def test_asking_whether_one_can_attend_online_answers_instead_of_opening_the_form(wechat, question):
    answer = ask(wechat, question)
    assert LIVESTREAM in answer and FORM_OPENED not in answer


def test_an_organizer_rule_keyword_in_latin_matches_only_whole_words(wechat):
    assert "动手实操" in ask(wechat, "有 workshop 吗")
    assert "动手实操" not in ask(wechat, "workshops", openid="o-other")


# ---- the form --------------------------------------------------------------------------------------


def open_form(wechat, openid: str = "o-form") -> None:
    """报名, then 同意 to the privacy notice: the form asks its first field."""
    assert FORM_OPENED in ask(wechat, "报名", openid)
    assert "请回复你的姓名" in ask(wechat, "同意", openid)


def test_in_the_form_a_question_is_answered_not_saved_as_the_name(wechat, app):
    open_form(wechat)
    answer = ask(wechat, "我是学生可以参加吗", "o-form")
    assert answer.endswith("请回复你的姓名：") and texts.FORM_HELP in answer
    assert "请回复你的手机号" in ask(wechat, "张三", "o-form")


@pytest.mark.parametrize("name", ["😀", "我想问一下，几点开始"])
def test_names_are_validated_as_names(wechat, name):
    open_form(wechat)
    assert ask(wechat, name, "o-form").endswith("请回复你的姓名：")
    assert "请回复你的手机号" in ask(wechat, "Li Lei", "o-form")


def test_a_metro_station_at_the_phone_step_answers_the_venue_instead_of_a_format_error(wechat):
    open_form(wechat)
    ask(wechat, "张三", "o-form")
    answer = ask(wechat, "13号线大钟寺站", "o-form")
    assert VENUE in answer and texts.PHONE_INVALID not in answer
    assert answer.endswith("用于活动通知）：")


def test_a_job_title_of_lecturer_can_be_entered(wechat):
    open_form(wechat)
    for text in ("张三", "13812345678", "火山引擎"):
        ask(wechat, text, "o-form")
    assert "请问你如何参加" in ask(wechat, "讲师", "o-form")


@pytest.mark.parametrize(("word", "label"), [("在线", "线上观看直播"), ("远程", "线上观看直播"), ("到场", "现场参加"), ("线下", "现场参加")])
def test_attendance_synonyms_map_to_online_and_onsite(wechat, word, label):
    open_form(wechat)
    for text in ("张三", "13812345678", "火山引擎", "工程师"):
        ask(wechat, text, "o-form")
    assert f"参加方式：{label}" in ask(wechat, word, "o-form")


def test_the_online_confirmation_carries_the_stream_not_a_checkin_code(wechat, app):
    reply = register_via_chat(wechat, "o-online", attendance="线上").content
    assert "签到码" not in reply and "扫描签到" not in reply
    assert "直播链接" in reply
    assert registration_of(app, "o-online").attendance == "online"


# ---- time ------------------------------------------------------------------------------------------


def test_at_half_past_two_now_playing_is_short_with_one_heading(wechat, clock):
    clock.set(STARTS + timedelta(minutes=30))
    answer = ask(wechat, "现在在讲什么")
    assert answer.count("Meetup 第十期") == 1 and len(answer.splitlines()) <= 4
    assert AGENDA not in answer


def test_the_livestream_during_the_event_is_under_way_not_announced_later(wechat, clock):
    clock.set(STARTS + timedelta(minutes=30))
    answer = ask(wechat, "直播链接")
    assert "直播进行中" in answer and "会在活动开始前" not in answer


def test_after_the_event_registration_talk_stops(wechat, app, clock):
    register_via_chat(wechat, "o-registered")
    clock.set(ENDS + timedelta(hours=1))
    assert "已经结束" in ask(wechat, "报名", "o-registered")
    assert "已经结束" in ask(wechat, "报名", "o-newcomer")
    assert "回复「报名」" not in ask(wechat, "我的报名", "o-newcomer")


def test_the_gift_rule_stops_promising_gifts_after_the_event(wechat, clock):
    assert "精美礼品" in ask(wechat, "有礼品吗")
    clock.set(ENDS + timedelta(hours=1))
    assert "精美礼品" not in ask(wechat, "有礼品吗", "o-later")


def test_a_shared_link_is_not_promised_to_anyone(wechat):
    link = push_xml("o-link", "link", {"Title": "t", "Description": "d", "Url": "https://example.org", "MsgId": 9})
    answer = wechat.post(link).content
    assert "转给工作人员" not in answer
