"""The registration conversation through the webhook: every step, validation, fallbacks, questions mid-form,
expiry, restarts, retries, my registration, cancelling and the registration deadline."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from bot.devtools.simulator import WeChatSimulator
from models import texts
from models.ledger import Claim, ClaimState
from tests.conftest import SHANGHAI, TOKEN
from tests.registration_steps import (
    ANSWERS,
    fill_form,
    form_messages,
    form_state,
    register_via_chat,
    registration_of,
    registrations,
    settings_with_event,
    start_form,
)

OPENID = "o-registrant"
WHEN = "2023年3月26日（周日）14:00–17:00"
VENUE = "北京市海淀区北三环西路甲 18 号院大钟寺广场 1 号楼 3F-18 报告厅"
SUMMARY_PROMPT = "回复「确认」完成报名，回复「修改」重新填写，回复「取消」放弃"


def test_form_asks_every_field_in_order_and_confirms_with_code_time_and_venue(wechat, app):
    replies = [wechat.send_text(OPENID, text).content for text in form_messages()]

    assert "回复「同意」继续报名" in replies[0] and "姓名" in replies[0]
    assert "请回复你的姓名" in replies[1]
    assert "请回复你的手机号" in replies[2]
    assert "请回复你的公司/单位" in replies[3]
    assert "请回复你的职位" in replies[4]
    assert "请问你如何参加" in replies[5]
    summary = replies[6]
    assert "姓名：张三" in summary and "公司/单位：火山引擎" in summary and "职位：工程师" in summary
    assert "手机号：138****5678" in summary and "13812345678" not in summary
    assert "参加方式：现场参加" in summary
    assert summary.endswith(SUMMARY_PROMPT)
    assert registrations(app) == []

    done = wechat.send_text(OPENID, "确认").content

    [registration] = registrations(app)
    assert (registration.name, registration.phone, registration.company, registration.title) == (
        "张三", "13812345678", "火山引擎", "工程师",
    )
    assert (registration.status, registration.attendance, registration.position) == ("confirmed", "onsite", None)
    assert re.fullmatch(r"[A-Z2-9]{6}", registration.checkin_code)
    assert "报名成功" in done and f"签到码：{registration.checkin_code}" in done
    assert f"时间：{WHEN}" in done and f"地点：{VENUE}" in done
    assert form_state(app, OPENID).state is None


def test_online_attendance_gets_the_stream_instead_of_the_venue(wechat, app):
    done = register_via_chat(wechat, OPENID, attendance="线上").content

    assert registration_of(app, OPENID).attendance == "online"
    assert "线上观看直播" in done and "直播链接会在活动开始前" in done
    assert "地点：" not in done


@pytest.mark.parametrize("words", ["报名", "注册", "参加", "我要报名", "6"])
def test_form_starts_from_every_way_of_asking(wechat, words):
    assert texts.CONSENT_PROMPT in wechat.send_text(OPENID, words).content


def test_form_starts_from_the_menu(wechat):
    assert texts.CONSENT_PROMPT in wechat.send_event(OPENID, "CLICK", key="REGISTER").content


@pytest.mark.parametrize(
    ("answered", "bad", "reason", "good", "next_prompt"),
    [
        (0, "名" * 33, "姓名最多 32 个字", "名" * 32, "请回复你的手机号"),
        (0, "   ", "姓名不能为空", "张三", "请回复你的手机号"),
        (1, "12345678901", texts.PHONE_INVALID, "13812345678", "请回复你的公司/单位"),
        (1, "1381234567", texts.PHONE_INVALID, "13812345678", "请回复你的公司/单位"),
        (1, "138123456789", texts.PHONE_INVALID, "13812345678", "请回复你的公司/单位"),
        (1, "我的电话", texts.PHONE_INVALID, "13812345678", "请回复你的公司/单位"),
        (2, "公" * 65, "公司/单位最多 64 个字", "火山引擎", "请回复你的职位"),
        (3, "职" * 65, "职位最多 64 个字", "工程师", "请问你如何参加"),
        (4, "随便", texts.ATTENDANCE_INVALID, "现场", "请核对报名信息"),
        (5, "好的", texts.NOT_UNDERSTOOD, "确认", "报名成功"),
    ],
)
def test_a_bad_answer_gets_the_reason_and_the_same_question(wechat, app, answered, bad, reason, good, next_prompt):
    steps = form_messages()
    for text in steps[: answered + 2]:  # 报名, 同意, then the fields answered
        question = wechat.send_text(OPENID, text).content
    state_before = form_state(app, OPENID).state

    refused = wechat.send_text(OPENID, bad).content

    assert refused.startswith(reason)
    assert refused.endswith(question.splitlines()[-1])
    assert form_state(app, OPENID).state == state_before
    assert next_prompt in wechat.send_text(OPENID, good).content


@pytest.mark.parametrize("typed", ["+86 138-1234-5678", "0086 13812345678", "８６１３８１２３４５６７８", "138 1234 5678"])
def test_phone_numbers_are_normalised(wechat, app, typed):
    register_via_chat(wechat, OPENID, phone=typed)
    assert registration_of(app, OPENID).phone == "13812345678"


def test_names_keep_emoji_fold_full_width_characters_and_are_trimmed(wechat, app):
    register_via_chat(wechat, OPENID, name="  张三😀ＡＢ  ")
    assert registration_of(app, OPENID).name == "张三😀AB"


def test_names_lose_invisible_and_bidi_control_characters(wechat, app):
    register_via_chat(wechat, OPENID, name="王\u202e小丽\u200b\u2066", company="\ufeff火山\u200d引擎")
    stored = registration_of(app, OPENID)
    assert (stored.name, stored.company) == ("王小丽", "火山引擎")


@pytest.mark.parametrize("invisible", ["\u200b\u200b", "\u202e\u2066", "\u3164", "\u200b \ufeff"])
def test_a_name_of_only_invisible_characters_is_refused(wechat, app, invisible):
    start_form(wechat, OPENID)
    assert wechat.send_text(OPENID, invisible).content.startswith(texts.field_empty(texts.FIELD_LABELS["name"]))
    assert "name" not in form_state(app, OPENID).answers


@pytest.mark.parametrize("word", ["取消", "退出"])
@pytest.mark.parametrize("answered", range(7))
def test_leaving_at_any_step_leaves_no_trace(wechat, app, word, answered):
    for text in form_messages()[: answered + 1]:
        wechat.send_text(OPENID, text)

    assert wechat.send_text(OPENID, word).content == texts.FORM_LEFT

    state = form_state(app, OPENID)
    assert (state.state, state.answers) == (None, {})
    assert "报名成功" not in wechat.send_text(OPENID, "确认").content
    assert registrations(app) == []


def test_cancel_alone_outside_a_form_never_cancels_a_registration(wechat, app):
    register_via_chat(wechat, OPENID)
    wechat.send_text(OPENID, "取消")
    assert registration_of(app, OPENID).status == "confirmed"


def test_modify_starts_the_form_again(wechat, app):
    fill_form(wechat, OPENID)

    restarted = wechat.send_text(OPENID, "修改").content

    assert restarted.startswith(texts.FORM_RESTART) and restarted.endswith("请回复你的姓名：")
    state = form_state(app, OPENID)
    assert state.state == "name" and set(state.answers) == {"consent", "consented_at"}


def test_modify_then_new_answers_replace_the_old_ones(wechat, app):
    fill_form(wechat, OPENID)
    wechat.send_text(OPENID, "修改")
    for text in ["李四", "13900001111", "英特尔", "架构师", "线上"]:
        summary = wechat.send_text(OPENID, text).content
    assert "姓名：李四" in summary and "手机号：139****1111" in summary and "张三" not in summary

    wechat.send_text(OPENID, "确认")
    registration = registration_of(app, OPENID)
    assert (registration.name, registration.company, registration.attendance) == ("李四", "英特尔", "online")


@pytest.mark.parametrize(
    ("answered", "question", "answer_part"),
    [
        (0, "时间？", WHEN),
        (0, "地点", VENUE),
        (1, "在哪里举办", VENUE),
        (1, "议程", "李玉光"),
        (3, "有直播吗？", "线上同步直播"),
        (5, "几点开始？", WHEN),
    ],
)
def test_questions_mid_form_are_answered_and_the_question_repeated(wechat, app, answered, question, answer_part):
    for text in form_messages()[: answered + 2]:
        pending = wechat.send_text(OPENID, text).content
    state_before = form_state(app, OPENID).state

    reply = wechat.send_text(OPENID, question).content

    assert answer_part in reply
    assert reply.endswith(pending.splitlines()[-1])
    assert form_state(app, OPENID).state == state_before


def test_a_keyword_that_is_no_question_gets_the_form_help_not_taken_as_a_name(wechat, app):
    start_form(wechat, OPENID)
    reply = wechat.send_text(OPENID, "帮助").content
    assert texts.FORM_HELP in reply and reply.endswith("请回复你的姓名：")
    assert "name" not in form_state(app, OPENID).answers


def test_an_abandoned_form_expires_after_thirty_minutes(wechat, app, clock):
    start_form(wechat, OPENID)
    clock.advance(timedelta(minutes=29))
    assert "请回复你的手机号" in wechat.send_text(OPENID, "张三").content

    clock.advance(timedelta(minutes=31))
    reply = wechat.send_text(OPENID, "13812345678").content

    assert "公司/单位" not in reply
    assert texts.CONSENT_PROMPT in wechat.send_text(OPENID, "报名").content


def test_a_form_survives_a_restart_of_the_app(wechat, app, make_app, settings):
    for text in form_messages()[:4]:
        wechat.send_text(OPENID, text)

    with TestClient(make_app(settings)) as restarted_client:
        restarted = WeChatSimulator(restarted_client, TOKEN)
        assert "请回复你的职位" in restarted.send_text(OPENID, ANSWERS["company"]).content
        restarted.send_text(OPENID, ANSWERS["title"])
        restarted.send_text(OPENID, ANSWERS["attendance"])
        assert "报名成功" in restarted.send_text(OPENID, "确认").content

    assert registration_of(app, OPENID).company == "火山引擎"


def _post_twice(wechat: WeChatSimulator, text: str) -> tuple[str, str]:
    xml = wechat.text_xml(OPENID, text, wechat.next_msg_id())
    return wechat.post(xml).content, wechat.post(xml).content


def _as_retried(first: str) -> str:
    """What a retry gets: the first reply, or its stand-in where it showed the answers (stored replies hold none)."""
    return texts.FORM_SUMMARY_STAND_IN if first.startswith("请核对报名信息") else first


def test_a_retry_at_any_step_gets_the_first_reply_and_moves_nothing(wechat, app):
    for text in [*form_messages(), "确认"]:
        first, retried = _post_twice(wechat, text)
        assert retried == _as_retried(first)

    [registration] = registrations(app)
    assert registration.status == "confirmed"


class ForgetfulLedger:
    """A ledger that lost every reply, as when a process dies between the commit and the Redis write."""

    def claim(self, session, key: str, openid: str) -> Claim:
        return Claim(ClaimState.NEW)

    def record(self, session, key: str, reply_xml: str) -> None:
        pass

    def release(self, key: str) -> None:
        pass


def test_a_retry_the_ledger_lost_still_gets_the_first_reply_from_the_form(make_settings, make_app):
    # Every message is posted twice: more than the shipped burst of the per-follower rate limit allows.
    content = make_settings().content
    content = content.model_copy(update={"rate_limit": content.rate_limit.model_copy(update={"burst": 100})})
    app = make_app(make_settings(content=content))
    app.state.services.responder.ledger = ForgetfulLedger()
    messages = [*form_messages(), "确认", "改为线上", "取消报名", "确认"]
    replies = []
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        for text in messages:
            first, retried = _post_twice(wechat, text)
            assert retried == _as_retried(first)
            replies.append(first)

    assert "报名成功" in replies[7]
    assert "已修改参加方式" in replies[8]
    assert replies[-1] == texts.registration_cancelled(app.state.services.settings.content.events[0], kept=True)
    [registration] = registrations(app)
    assert registration.status == "cancelled"


def test_registering_again_shows_the_existing_registration(wechat, app):
    register_via_chat(wechat, OPENID)
    code = registration_of(app, OPENID).checkin_code

    again = wechat.send_text(OPENID, "报名").content

    assert "你已经报名了本场活动" in again and f"签到码：{code}" in again
    assert len(registrations(app)) == 1


@pytest.mark.parametrize("words", ["我的报名", "报名状态", "签到码", "7"])
def test_my_registration_shows_status_and_code(wechat, app, words):
    assert wechat.send_text(OPENID, words).content == texts.NOT_REGISTERED
    register_via_chat(wechat, OPENID)

    mine = wechat.send_text(OPENID, words).content

    assert "状态：报名成功" in mine and f"签到码：{registration_of(app, OPENID).checkin_code}" in mine


def test_cancel_registration_asks_first_and_keeps_it_on_any_other_answer(wechat, app):
    register_via_chat(wechat, OPENID)

    asked = wechat.send_text(OPENID, "取消报名").content
    kept = wechat.send_text(OPENID, "算了").content

    assert asked.endswith(texts.CANCEL_CONFIRM_PROMPT)
    assert kept == texts.CANCEL_KEPT
    assert registration_of(app, OPENID).status == "confirmed"


def test_cancel_registration_then_register_again_with_a_new_code(wechat, app):
    register_via_chat(wechat, OPENID)
    old_code = registration_of(app, OPENID).checkin_code
    wechat.send_text(OPENID, "取消报名")

    cancelled = wechat.send_text(OPENID, "确认").content

    assert "已取消" in cancelled
    assert registration_of(app, OPENID) is None
    assert wechat.send_text(OPENID, "我的报名").content == texts.NOT_REGISTERED
    register_via_chat(wechat, OPENID)
    assert [r.status for r in registrations(app)] == ["cancelled", "confirmed"]
    assert registration_of(app, OPENID).checkin_code != old_code


def test_cancel_registration_without_one(wechat):
    assert wechat.send_text(OPENID, "取消报名").content == texts.NOT_REGISTERED


def test_registration_closes_when_the_event_starts(wechat, app, clock):
    clock.set(datetime(2023, 3, 26, 14, 0, tzinfo=SHANGHAI))
    assert "报名已于 2023年3月26日（周日）14:00 截止" in wechat.send_text(OPENID, "报名").content

    clock.set(datetime(2023, 3, 26, 17, 0, tzinfo=SHANGHAI))
    assert "已经结束，报名已关闭" in wechat.send_text(OPENID, "报名").content
    assert registrations(app) == []


def test_registration_closes_at_the_configured_deadline(make_settings, make_app, clock):
    deadline = datetime(2023, 3, 22, 18, 0, tzinfo=SHANGHAI)
    app = make_app(settings_with_event(make_settings, registration_closes_at=deadline))
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        clock.set(deadline - timedelta(minutes=5))
        fill_form(wechat, OPENID)
        clock.set(deadline)

        late = wechat.send_text(OPENID, "确认").content

        assert "报名已于 2023年3月22日（周三）18:00 截止" in late
        assert registrations(app) == []
        assert "截止" in wechat.send_text(OPENID, "报名").content


def test_cancelling_after_the_start_is_refused(wechat, app, clock):
    register_via_chat(wechat, OPENID)
    clock.set(datetime(2023, 3, 26, 14, 30, tzinfo=SHANGHAI))

    assert wechat.send_text(OPENID, "取消报名").content == texts.CHANGES_CLOSED
    assert registration_of(app, OPENID).status == "confirmed"


@pytest.mark.parametrize("words", ["取消报名", "不报了"])
def test_cancel_registration_inside_the_form_leaves_the_form(wechat, app, words):
    fill_form(wechat, OPENID)
    assert wechat.send_text(OPENID, words).content == texts.FORM_LEFT
    assert registrations(app) == []


def test_a_checkin_code_already_taken_fails_once_and_the_next_confirmation_draws_again(app, wechat, monkeypatch):
    register_via_chat(wechat, "o-first")
    taken = registration_of(app, "o-first").checkin_code
    fill_form(wechat, OPENID)
    # The random source, controlled: the next six draws spell the code o-first already holds.
    draws, random_choice = iter(taken), secrets.choice
    monkeypatch.setattr(secrets, "choice", lambda alphabet: next(draws, None) or random_choice(alphabet))

    assert wechat.send_text(OPENID, "确认").content == texts.HANDLER_FAILED
    assert registration_of(app, OPENID) is None and form_state(app, OPENID).state == "confirm"
    assert "报名成功" in wechat.send_text(OPENID, "确认").content
    assert registration_of(app, OPENID).checkin_code != taken
