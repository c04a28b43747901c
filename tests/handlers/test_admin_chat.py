"""Organizers' commands in the chat: only for allow-listed openids, invisible to everyone else."""

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.devtools.simulator import WeChatSimulator
from models import BroadcastDraft, Campaign, Delivery, Registration, organizer, texts
from models.inbox import InboxQuestion
from models.registration import ONLINE
from tests.conftest import TOKEN
from tests.organizer_factories import add_registration
from tests.personal_data import REGISTRATION_FIELDS, holding

ADMIN = "o-admin"


@pytest.fixture
def chat_app(make_app, make_settings):
    return make_app(make_settings(admin_openids_raw=f"someone-else, {ADMIN}"))


@pytest.fixture
def chat(chat_app):
    with TestClient(chat_app) as client:
        yield WeChatSimulator(client, TOKEN)


@pytest.fixture
def seeded(chat_app, clock):
    """Two confirmed (one checked in), one waitlisted, one cancelled; capacity 2."""
    now = clock.now()
    with chat_app.state.services.sessions.begin() as session:
        people = {
            "alice": add_registration(session, "o-alice", now=now, name="王小丽", phone="13812345678", company="字节跳动", capacity=2, channel="poster"),
            "bob": add_registration(session, "o-bob", now=now, name="李雷", phone="13900001111", company="Intel", capacity=2, checked_in=True),
            "carol": add_registration(session, "o-carol", now=now, name="韩梅梅", phone="13700002222", company="火山引擎", capacity=2),
            "dave": add_registration(session, "o-dave", now=now - timedelta(days=1), name="赵四", capacity=2, cancelled=True),
        }
        return {key: (registration.id, registration.checkin_code) for key, registration in people.items()}


@pytest.mark.parametrize("command", ["管理", "统计", "查询 王", "签到 ABC234", "广播 明天见", "确认广播", "取消广播"])
def test_commands_are_invisible_to_followers(chat, chat_app, seeded, command):
    # A follower gets for a command exactly what they get for any words the bot does not know.
    chat.send_text("o-alice", "随便说点什么")
    reply = chat.send_text("o-alice", command).content
    assert reply == chat.send_text("o-alice", "另一句没人懂的话").content
    with chat_app.state.services.sessions() as session:
        assert session.scalars(select(Campaign)).all() == []
        assert session.scalars(select(BroadcastDraft)).all() == []


def test_admins_can_list_their_commands(chat):
    reply = chat.send_text(ADMIN, "管理").content
    assert all(word in reply for word in ("统计", "查询", "签到", "广播", "确认广播"))


def test_stats_counts_the_current_event(chat, seeded):
    reply = chat.send_text(ADMIN, "统计").content
    assert "现场：2 / 200，剩余 198 个座位" in reply
    assert "线上：0" in reply
    assert "候补：1" in reply
    assert "已取消：1" in reply
    assert "已签到：1" in reply
    assert "今日新增：3" in reply
    assert "poster 1" in reply and "直接关注 2" in reply


def test_query_finds_by_name_company_code_and_phone_suffix_with_phones_masked(chat, seeded):
    by_name = chat.send_text(ADMIN, "查询 王小丽").content
    assert "王小丽" in by_name and "138****5678" in by_name and "13812345678" not in by_name
    assert "字节跳动" in chat.send_text(ADMIN, "查询 字节").content
    assert "李雷" in chat.send_text(ADMIN, f"查询 {seeded['bob'][1].lower()}").content
    assert "韩梅梅" in chat.send_text(ADMIN, "查询 2222").content
    assert "没有找到" in chat.send_text(ADMIN, "查询 不存在的人").content


def test_replies_that_name_registrants_are_kept_for_a_retry_only_as_a_stand_in(chat, chat_app, seeded):
    _, code = seeded["alice"]
    query, check_in = chat.text_xml(ADMIN, "查询 王小丽"), chat.text_xml(ADMIN, f"签到 {code}")
    assert "王小丽" in chat.post(query).content and "王小丽" in chat.post(check_in).content
    chat.send_text("o-asker", "我是王小丽，可以带家属吗")
    inbox = chat.text_xml(ADMIN, "问题")
    assert "王小丽" in chat.post(inbox).content

    questions = InboxQuestion.__table__.c
    assert holding(chat_app, "王小丽", "138****5678", besides=(*REGISTRATION_FIELDS, questions.text, questions.words)) == []

    assert {chat.post(xml).content for xml in (query, check_in, inbox)} == {texts.ADMIN_REPLY_STAND_IN}


def test_query_shows_at_most_ten(chat, chat_app, clock):
    with chat_app.state.services.sessions.begin() as session:
        for number in range(12):
            add_registration(session, f"o-{number}", now=clock.now(), name=f"测试{number}", phone=f"1380000{number:04d}")
    reply = chat.send_text(ADMIN, "查询 测试").content
    assert reply.count("签到码") == 10
    assert "共 12 条" in reply


def test_checkin_by_code_marks_arrival_once(chat, chat_app, seeded):
    registration_id, code = seeded["alice"]
    assert "已为 王小丽 签到" in chat.send_text(ADMIN, f"签到 {code.lower()}").content
    assert "之前已经签到过了" in chat.send_text(ADMIN, f"签到 {code}").content
    with chat_app.state.services.sessions() as session:
        assert session.get(Registration, registration_id).checked_in_at is not None


def test_checkin_of_an_online_registrant_warns_that_no_seat_was_kept(chat, chat_app, clock):
    with chat_app.state.services.sessions.begin() as session:
        code = add_registration(session, "o-olivia", now=clock.now(), name="欧丽", attendance=ONLINE).checkin_code
    reply = chat.send_text(ADMIN, f"签到 {code}").content
    assert reply == f"已为 欧丽 签到（签到码 {code}）。\n注意：欧丽 报名的是线上观看，没有为其预留现场座位。"


def test_checkin_refuses_unknown_codes_and_the_waitlist(chat, chat_app, seeded):
    assert "没有找到签到码 ZZZZZZ" in chat.send_text(ADMIN, "签到 zzzzzz").content
    registration_id, code = seeded["carol"]
    assert "候补" in chat.send_text(ADMIN, f"签到 {code}").content
    with chat_app.state.services.sessions() as session:
        assert session.get(Registration, registration_id).checked_in_at is None


def deliveries(chat_app):
    with chat_app.state.services.sessions() as session:
        return sorted(session.scalars(select(Delivery.openid)).all())


@pytest.mark.parametrize(
    ("command", "audience", "recipients"),
    [
        ("广播 明天下午两点见", "confirmed", ["o-alice", "o-bob"]),
        ("广播 候补 有空位会通知大家", "waitlisted", ["o-carol"]),
        ("广播 未签到 还没到的朋友请抓紧", "not_checked_in", ["o-alice"]),
        ("广播 现场 请提前到场签到，记得带电脑", "onsite", ["o-alice", "o-bob"]),
        ("广播 线上 直播链接稍后发送", "online", []),
    ],
)
def test_broadcast_previews_then_sends_only_after_confirmation(chat, chat_app, seeded, command, audience, recipients):
    preview = chat.send_text(ADMIN, command).content
    assert f"共 {len(recipients)} 人" in preview
    assert command.split()[-1] in preview
    assert deliveries(chat_app) == []
    started = chat.send_text(ADMIN, "确认广播").content
    assert f"已开始发送给 {len(recipients)} 人" in started
    assert deliveries(chat_app) == recipients
    with chat_app.state.services.sessions() as session:
        [campaign] = session.scalars(select(Campaign)).all()
        assert (campaign.audience, campaign.text) == (audience, command.split()[-1])
    assert "没有待确认的广播" in chat.send_text(ADMIN, "确认广播").content


def test_a_broadcast_keeps_its_full_width_punctuation(chat, chat_app, seeded):
    text = "明天见！请提前（13:30）到场，记得带电脑。"
    assert text in chat.send_text(ADMIN, f"　广播　{text} ").content  # ideographic spaces around the command
    chat.send_text(ADMIN, "确认广播")
    with chat_app.state.services.sessions() as session:
        assert session.scalars(select(Campaign.text)).all() == [text]


def test_stats_tell_on_site_from_online(chat, chat_app, clock):
    with chat_app.state.services.sessions.begin() as session:
        add_registration(session, "o-alice", now=clock.now(), name="王小丽")
        add_registration(session, "o-olivia", now=clock.now(), name="欧丽", attendance="online")
    reply = chat.send_text(ADMIN, "统计").content
    assert "现场：1 / 200，剩余 199 个座位" in reply and "线上：1" in reply


def test_a_broadcast_without_text_explains_the_commands(chat, chat_app):
    assert "管理员命令" in chat.send_text(ADMIN, "广播").content
    assert deliveries(chat_app) == []


def test_a_discarded_or_stale_draft_is_never_sent(chat, chat_app, seeded, clock):
    chat.send_text(ADMIN, "广播 第一稿")
    assert "已放弃" in chat.send_text(ADMIN, "取消广播").content
    assert "没有待确认的广播" in chat.send_text(ADMIN, "确认广播").content
    chat.send_text(ADMIN, "广播 第二稿")
    clock.advance(organizer.DRAFT_LIFETIME + timedelta(minutes=1))
    assert "没有待确认的广播" in chat.send_text(ADMIN, "确认广播").content
    assert deliveries(chat_app) == []


def test_the_admin_hears_the_outcome_once_every_delivery_is_finished(chat, chat_app, seeded, clock):
    chat.send_text(ADMIN, "广播 明天见")
    chat.send_text(ADMIN, "确认广播")
    sessions = chat_app.state.services.sessions
    with sessions.begin() as session:
        assert organizer.report_finished_broadcasts(session, clock.now()) == []
        alice, bob = session.scalars(select(Delivery).order_by(Delivery.openid)).all()
        alice.status = "sent"
        bob.status, bob.errcode = "failed", 45015
    with sessions.begin() as session:
        [reported] = organizer.report_finished_broadcasts(session, clock.now())
    with sessions.begin() as session:
        assert organizer.report_finished_broadcasts(session, clock.now()) == []
        report = session.scalars(select(Campaign).where(Campaign.purpose == organizer.REPORT_PURPOSE)).one()
        [to_admin] = session.scalars(select(Delivery).where(Delivery.campaign_id == report.id)).all()
    assert to_admin.openid == ADMIN
    assert f"广播 #{reported} 发送完成" in report.text
    assert "部分送达：1/2 人收到" in report.text
    assert "李雷：未互动超过 48 小时" in report.text


def test_the_scheduler_sweep_sends_the_report(chat, chat_app, seeded, clock):
    from scheduler.jobs import JobQueue, sweep_job

    chat.send_text(ADMIN, "广播 候补 有空位会通知")
    chat.send_text(ADMIN, "确认广播")
    with chat_app.state.services.sessions.begin() as session:
        session.scalars(select(Delivery)).one().status = "sent"
    queue = JobQueue(chat_app.state.services.settings, chat_app.state.services.engine, clock)
    queue.start(paused=True)
    try:
        sweep_job(queue.services)
    finally:
        queue.shutdown()
    with chat_app.state.services.sessions() as session:
        report = session.scalars(select(Campaign).where(Campaign.purpose == organizer.REPORT_PURPOSE)).one()
        assert session.scalars(select(Delivery.openid).where(Delivery.campaign_id == report.id)).one() == ADMIN
    assert "已送达：1/1 人收到" in report.text
