"""What followers can ask: each topic through signed XML posted to the real app."""

from datetime import datetime, timedelta

import pytest

from bot.devtools.simulator import push_xml
from models import Follower
from tests.conftest import SHANGHAI

STARTS = datetime(2023, 3, 26, 14, 0, tzinfo=SHANGHAI)
ENDS = datetime(2023, 3, 26, 17, 0, tzinfo=SHANGHAI)
SPEAKERS = ["李玉光", "王万兴", "郭海青", "赵亮"]


def ask(wechat, text: str, openid: str = "o-follower") -> str:
    reply = wechat.send_text(openid, text)
    assert reply.status == 200 and reply.msg_type == "text", reply.body
    return reply.content


@pytest.mark.parametrize("question", ["议程", "日程安排？", "请问这次都讲什么", "有哪些嘉宾", "讲师是谁？", "ＡＧＥＮＤＡ", " 议 程 ！"])
def test_agenda_lists_every_talk_with_speaker_and_title(wechat, question):
    answer = ask(wechat, question)
    for speaker in SPEAKERS:
        assert speaker in answer
    assert "《基于 Ray 的大模型离线推理》" in answer
    assert "火山引擎资深云原生架构师" in answer


@pytest.mark.parametrize(
    ("question", "speaker", "outline_item"),
    [
        ("第一场", "李玉光", "客户案例分享"),
        ("第2场讲什么", "王万兴", "Kuberay 助力 Ray 云原生部署"),
        ("第三场", "郭海青", "GPU 利用率提升实践"),
        ("赵亮", "赵亮", "训练/推理软硬件方案探讨"),
        ("王万兴老师讲什么？", "王万兴", "大模型离线推理关键挑战"),
    ],
)
def test_a_talk_by_ordinal_or_speaker_gives_abstract_and_outline(wechat, question, speaker, outline_item):
    answer = ask(wechat, question)
    assert f"讲师：{speaker}" in answer
    assert outline_item in answer
    assert "简介：" in answer


def test_a_bare_number_after_the_agenda_means_that_talk(wechat):
    ask(wechat, "议程")
    assert "讲师：郭海青" in ask(wechat, "3")
    assert "共有 4 场分享" in ask(wechat, "9")


def test_a_bare_number_after_the_help_menu_means_that_topic(wechat):
    menu = ask(wechat, "帮助")
    assert "1. 议程与嘉宾" in menu and "3. 活动地点" in menu
    assert "大钟寺广场" in ask(wechat, "3")
    assert "14:00–17:00" in ask(wechat, "２")  # full-width digit


def test_a_bare_number_with_no_list_shown_uses_the_help_menu(wechat):
    assert "大钟寺广场" in ask(wechat, "3", openid="o-new")
    assert "回复数字或关键词" in ask(wechat, "99", openid="o-new")


@pytest.mark.parametrize("question", ["时间", "几点开始？", "哪天举行", "什么时候", "活动日期是？", "星期几"])
def test_time_gives_date_weekday_start_end_and_countdown(wechat, question):
    answer = ask(wechat, question)
    assert "2023年3月26日（周日）14:00–17:00" in answer
    assert "距离开始还有 6 天 4 小时" in answer


def test_time_during_and_after_the_event(wechat, clock):
    clock.set(STARTS + timedelta(minutes=30))
    assert "活动正在进行中，17:00 结束" in ask(wechat, "几点")
    clock.set(ENDS + timedelta(days=900))
    assert "已于 2023年3月26日（周日）17:00 结束" in ask(wechat, "时间")


def test_countdown_in_hours_and_minutes_on_the_day(wechat, clock):
    clock.set(STARTS - timedelta(hours=2, minutes=10))
    assert "还有 2 小时 10 分钟" in ask(wechat, "几点开始")


@pytest.mark.parametrize("question", ["地点", "地址在哪里？", "怎么去", "场地", "会场在哪儿"])
def test_venue_gives_the_address(wechat, question):
    answer = ask(wechat, question)
    assert "北京市海淀区北三环西路甲 18 号院大钟寺广场 1 号楼 3F-18 报告厅" in answer
    assert "线下+线上同步直播" in answer


def test_livestream_before_the_event_says_when_the_link_comes(wechat):
    answer = ask(wechat, "有直播吗")
    assert "线下+线上同步直播" in answer
    assert "直播链接会在活动开始前在本公众号公布" in answer


def test_materials_depend_on_whether_the_event_has_ended(wechat, clock):
    assert "活动结束后分享" in ask(wechat, "有PPT吗")
    clock.set(ENDS + timedelta(hours=1))
    assert "正在整理中" in ask(wechat, "回放")


def test_live_replay_question_means_materials_not_livestream(wechat, clock):
    clock.set(ENDS + timedelta(hours=1))
    assert "课件和回放" in ask(wechat, "直播回放在哪看")


def test_now_next_without_talk_times_says_where_the_event_stands_in_four_lines(wechat, clock):
    clock.set(STARTS + timedelta(minutes=30))
    answer = ask(wechat, "现在在讲什么")
    assert "活动正在进行中" in answer and "回复「议程」" in answer
    # Once the heading, no agenda dump: at most four lines.
    assert answer.count("Meetup 第十期") == 1 and len(answer.splitlines()) <= 4


@pytest.mark.parametrize("question", ["你好", "asdfgh", "？？？", "帮助"])
def test_help_and_unrecognised_text_get_the_numbered_menu(wechat, question):
    answer = ask(wechat, question)
    assert "回复数字或关键词" in answer
    assert "1. 议程与嘉宾" in answer


def test_voice_recognition_is_answered_like_text(wechat):
    voice = push_xml("o-voice", "voice", {"MediaId": "m1", "Format": "amr", "Recognition": "活动在哪里举办", "MsgId": 7})
    assert "大钟寺广场" in wechat.post(voice).content


def test_voice_without_recognition_gets_a_pointer_to_keywords(wechat):
    voice = push_xml("o-voice", "voice", {"MediaId": "m1", "Format": "amr", "MsgId": 8})
    assert "没能听清" in wechat.post(voice).content


def test_subscribe_welcomes_with_the_current_event_and_records_the_qr_channel(app, wechat):
    reply = wechat.send_event("o-new-follower", "subscribe", "qrscene_poster-beijing", Ticket="t")
    assert "感谢关注火山引擎开发者社区" in reply.content
    assert "2023年3月26日（周日）14:00–17:00" in reply.content
    assert "1. 议程与嘉宾" in reply.content
    with app.state.services.sessions() as session:
        assert session.get(Follower, "o-new-follower").channel == "poster-beijing"


def test_welcome_after_the_event_says_it_is_over(wechat, clock):
    clock.set(ENDS + timedelta(days=1))
    assert "圆满结束" in wechat.send_event("o-late", "subscribe").content


@pytest.mark.parametrize(("key", "expected"), [("AGENDA", "赵亮"), ("TIME", "14:00–17:00"), ("VENUE", "3F-18")])
def test_menu_clicks_map_to_topics(wechat, key, expected):
    assert expected in wechat.send_event("o-clicker", "CLICK", key).content


def test_unsubscribe_is_acknowledged_with_success(wechat):
    assert wechat.send_event("o-leaver", "unsubscribe").is_success
