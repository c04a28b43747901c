"""Two topics named equally ("时间地点"): a short numbered choice, and the follower's next "1" or "2" answers
that topic (issue 20). Through signed XML posted to the real app with the shipped config."""

from datetime import timedelta

import pytest

from models import texts
from tests.handlers.test_understanding import AGENDA, LIVESTREAM, STARTS, TIME, VENUE, ask

MATERIALS = "课件"
HELP_MENU = "回复数字或关键词"


@pytest.mark.parametrize(
    ("message", "first", "second"),
    [
        ("时间地点", TIME, VENUE),
        ("时间和地点？", TIME, VENUE),
        ("请问活动的地址和时间", VENUE, TIME),
        ("议程还是直播", AGENDA, LIVESTREAM),
        ("time and venue", TIME, VENUE),
        ("时间和报告厅", TIME, VENUE),  # close: one character more is no sign of the topic meant
    ],
)
def test_two_topics_named_equally_get_a_numbered_choice_and_the_number_answers(wechat, message, first, second):
    choice = ask(wechat, message, "o-first")
    assert choice.startswith("你是想问") and choice.count("\n1. ") == 1 and "\n2. " in choice and "\n3. " not in choice
    assert first in ask(wechat, "1", "o-first")

    assert ask(wechat, message, "o-second") == choice
    assert second in ask(wechat, "2", "o-second")


def test_the_choice_names_the_topics_in_the_order_the_follower_wrote_them(wechat):
    assert ask(wechat, "地点时间") == texts.topic_choice(["venue", "time"])


def test_the_choice_still_holds_once_the_activity_is_written(app, wechat):
    ask(wechat, "时间地点")
    app.state.services.activity.flush()
    assert VENUE in ask(wechat, "2")
    assert TIME in ask(wechat, "1")  # the choice stays until another list is shown


def test_a_number_the_choice_does_not_offer_gets_the_help_menu(wechat):
    ask(wechat, "时间地点")
    assert HELP_MENU in ask(wechat, "5")


def test_another_list_replaces_the_choice(wechat):
    ask(wechat, "时间地点")
    ask(wechat, "议程")
    assert "讲师：王万兴" in ask(wechat, "2")
    ask(wechat, "帮助")
    assert VENUE in ask(wechat, "3")


@pytest.mark.parametrize(
    ("message", "answer_contains"),
    [
        # A question phrase (在哪, 哪里, 讲什么) asks about what the other word names.
        ("课件在哪", MATERIALS),
        ("ppt 哪里下", MATERIALS),
        ("议程在哪看", AGENDA),
        ("直播在哪看", LIVESTREAM),
        # Another word says which topic is meant (分享 the slides, 下载 them).
        ("ppt能分享吗", MATERIALS),
        ("课件在哪下载", MATERIALS),
        # One topic named far more than the other.
        ("议程安排和嘉宾介绍时间", AGENDA),
        # One compound name (the replay of the livestream).
        ("直播回放", MATERIALS),
    ],
)
def test_a_message_that_says_which_topic_it_means_gets_no_choice(wechat, message, answer_contains):
    answer = ask(wechat, message)
    assert answer_contains in answer and not answer.startswith("你是想问")


def test_what_comes_next_during_the_event_is_no_choice(wechat, clock):
    clock.set(STARTS + timedelta(minutes=30))
    answer = ask(wechat, "接下来讲什么")
    assert "活动正在进行中" in answer and not answer.startswith("你是想问")


def test_inside_the_form_two_topics_are_both_answered_not_offered(wechat):
    ask(wechat, "报名", "o-form")
    ask(wechat, "同意", "o-form")
    answer = ask(wechat, "时间地点？", "o-form")
    assert TIME in answer and VENUE in answer and answer.endswith("请回复你的姓名：")
