"""The organizer dashboard in a real browser: headless Chromium (Debian's) driven by Playwright.

The real app is served by uvicorn on a free loopback port; the browser logs in, searches, downloads the
CSV, checks someone in and sends a broadcast to the fake WeChat API, watching the delivery report change.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.admin.export import UTF8_BOM
from bot.devtools.fake_wechat import LoopbackServer
from models import AuditEntry, texts
from models.follower import get_or_create_follower
from models.inbox import store_question
from scheduler.sender import build_sender
from tests.dashboard_pages import log_in
from tests.organizer_factories import ADMIN_TOKEN, add_registration

playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def live_app(make_app, outbound_settings, fake_wechat, clock):
    app = make_app(outbound_settings.model_copy(update={"admin_token": ADMIN_TOKEN}))
    now = clock.now()
    with app.state.services.sessions.begin() as session:
        add_registration(session, "o-alice", now=now, name="王小丽", phone="13812345678", company="字节跳动", channel="poster")
        add_registration(session, "o-bob", now=now, name="李雷", phone="13900001111", company="Intel", checked_in=True)
        add_registration(session, "o-eve", now=now, name="=1+1", phone="13700009999", company="@公司 🚀")
    for openid in ("o-alice", "o-bob", "o-eve"):
        fake_wechat.tell_follower(openid, last_interaction_at=now)
    with LoopbackServer(app, name="dashboard-app") as server:
        yield app, server.base_url


@pytest.fixture
def page(browser, live_app):
    context = browser.new_context(accept_downloads=True, locale="zh-CN")
    page = context.new_page()
    yield page
    context.close()


def table_names(page) -> list[str]:
    return page.locator("#registrations-table tbody tr td:first-child").all_inner_texts()


def test_a_wrong_token_is_refused_and_nothing_is_shown(page, live_app):
    _, base_url = live_app
    log_in(page, base_url, token="wrong")
    playwright_api.expect(page.locator("#login-error")).to_have_text("令牌不正确。")
    assert page.locator("#app").is_hidden()
    assert "王小丽" not in page.content()


def test_organizer_logs_in_searches_downloads_and_checks_in(page, live_app, tmp_path):
    _, base_url = live_app
    log_in(page, base_url)
    expect = playwright_api.expect
    expect(page.locator("#event-cards")).to_contain_text("3 / 200")
    assert "token" not in page.url and ADMIN_TOKEN not in page.url
    assert page.evaluate("sessionStorage.getItem('eventbot-admin-token')") == ADMIN_TOKEN
    expect(page.locator("#registrations-table tbody tr")).to_have_count(3)

    page.get_by_label("搜索").fill("字节")
    page.get_by_role("button", name="查询").click()
    expect(page.locator("#registrations-table tbody tr")).to_have_count(1)
    assert table_names(page) == ["王小丽"]

    with page.expect_download() as download_info:
        page.get_by_role("button", name="下载 CSV").click()
    document = Path(download_info.value.path()).read_bytes().decode("utf-8")
    assert document.startswith(UTF8_BOM)
    rows = list(csv.DictReader(io.StringIO(document.removeprefix(UTF8_BOM))))
    assert [row["姓名"] for row in rows] == ["王小丽"]

    page.get_by_label("搜索").fill("")
    page.get_by_label("签到", exact=True).select_option("false")
    expect(page.locator("#registrations-table tbody tr")).to_have_count(2)
    page.get_by_role("button", name="为 王小丽 签到").click()
    expect(page.locator("#registrations-message")).to_have_text("王小丽 签到成功。")
    expect(page.locator("#registrations-table tbody tr")).to_have_count(1)
    assert table_names(page) == ["=1+1"]  # shown as text, never evaluated or rendered as markup
    page.screenshot(path=str(tmp_path / "dashboard-registrations.png"), full_page=True)


def test_phones_are_masked_until_revealed_and_the_reveal_is_audited(page, live_app):
    app, base_url = live_app
    expect = playwright_api.expect
    log_in(page, base_url)
    phones = page.locator("#registrations-table tbody tr td:nth-child(2)")
    expect(phones.first).to_contain_text("138****5678")
    assert "13812345678" not in page.content()

    page.get_by_role("button", name="查看 王小丽 的完整手机号（会记录在审计日志中）").click()

    expect(phones.first).to_have_text("13812345678")
    with app.state.services.sessions() as session:
        [entry] = session.scalars(select(AuditEntry)).all()
    assert (entry.actor, entry.action, entry.rows) == ("admin", "reveal_phone", 1)


def test_a_phone_two_registrations_share_is_flagged_in_the_list(page, live_app, clock):
    app, base_url = live_app
    with app.state.services.sessions.begin() as session:
        add_registration(session, "o-twin", now=clock.now(), name="王小丽的同事", phone="13812345678")
    expect = playwright_api.expect
    log_in(page, base_url)
    rows = page.locator("#registrations-table tbody tr")
    expect(rows).to_have_count(4)

    flags = [rows.nth(index).locator("td:nth-child(2) .tag.shared") for index in range(4)]

    expect(flags[0]).to_have_text("重复")
    expect(flags[3]).to_have_text("重复")
    expect(flags[1]).to_have_count(0)
    expect(flags[2]).to_have_count(0)


def test_organizer_broadcasts_and_watches_the_report(page, live_app, outbound_settings, fake_wechat, clock, tmp_path):
    app, base_url = live_app
    expect = playwright_api.expect
    log_in(page, base_url)
    page.get_by_label("发送对象").select_option("confirmed")
    expect(page.locator("#audience-preview")).to_have_text("将发送给 3 人。")
    page.get_by_label("消息内容").fill("明天下午两点，不见不散！")
    page.get_by_role("button", name="预览并发送").click()
    expect(page.locator("#confirm-question")).to_have_text("确认立即发送给「已确认报名」共 3 人？")
    page.get_by_role("button", name="确认发送").click()
    expect(page.locator("#report-status")).to_contain_text("发送中")
    expect(page.locator("#report-pending")).to_have_text("3")

    # The outbox sender delivers through the fake WeChat API while the page keeps polling the report.
    build_sender(outbound_settings, app.state.services.sessions, clock).run_until_idle()
    expect(page.locator("#report-status")).to_contain_text("已送达：3/3 人收到")
    expect(page.locator("#report-sent")).to_have_text("3")
    expect(page.locator("#report-pending")).to_have_text("0")
    delivered = sorted(message["touser"] for message in fake_wechat.messages())
    assert delivered == ["o-alice", "o-bob", "o-eve"]
    page.screenshot(path=str(tmp_path / "dashboard-broadcast.png"), full_page=True)


def test_organizer_schedules_a_broadcast_and_cancels_it(page, live_app, outbound_settings, fake_wechat, clock):
    app, base_url = live_app
    expect = playwright_api.expect
    log_in(page, base_url)
    page.get_by_label("发送对象").select_option("not_checked_in")
    page.get_by_label("定时发送（可选）").fill("2023-03-26T13:00")
    page.get_by_label("消息内容").fill("还没签到的朋友请抓紧")
    page.get_by_role("button", name="预览并发送").click()
    expect(page.locator("#confirm-question")).to_have_text("确认于 2023年3月26日星期日 13:00（中国标准时间）发送给「已确认但未签到」共 2 人？")
    page.get_by_role("button", name="确认发送").click()
    expect(page.locator("#report-status")).to_contain_text("已排期，计划于 2023/3/26 13:00:00")
    page.get_by_role("button", name="取消这次群发").click()
    expect(page.locator("#report-status")).to_contain_text("已取消")
    expect(page.get_by_role("button", name="取消这次群发")).to_be_hidden()
    build_sender(outbound_settings, app.state.services.sessions, clock).run_until_idle()
    assert fake_wechat.messages() == []


def test_a_paused_sender_shows_in_the_report_with_wechats_code(page, live_app, outbound_settings, fake_wechat, clock):
    app, base_url = live_app
    expect = playwright_api.expect
    fake_wechat.inject("errcode", errcode=45009, times=None)
    log_in(page, base_url)
    page.get_by_label("发送对象").select_option("all_registrants")
    page.get_by_label("消息内容").fill("临时通知")
    page.get_by_role("button", name="预览并发送").click()
    page.get_by_role("button", name="确认发送").click()
    expect(page.locator("#report-pending")).to_have_text("3")
    build_sender(outbound_settings, app.state.services.sessions, clock).run_until_idle()
    expect(page.locator("#report-status")).to_contain_text("已暂停")
    expect(page.locator("#report-errors")).to_contain_text("微信错误码 45009")


def test_the_page_says_when_the_admin_api_is_disabled(browser, make_app, settings):
    assert settings.admin_token == ""
    with LoopbackServer(make_app(settings), name="dashboard-disabled") as server:
        context = browser.new_context(locale="zh-CN")
        page = context.new_page()
        log_in(page, server.base_url, token="anything")
        playwright_api.expect(page.locator("#login-error")).to_contain_text("服务器没有设置 ADMIN_TOKEN")
        assert page.locator("#app").is_hidden()
        context.close()


def test_reminders_warn_what_will_not_arrive_and_who_is_reachable_now(page, live_app, clock):
    app, base_url = live_app
    with app.state.services.sessions.begin() as session:  # only 王小丽 wrote to the account lately
        for openid in ("o-bob", "o-eve"):
            get_or_create_follower(session, openid, clock.now()).last_interaction_at = clock.now() - timedelta(days=3)
    log_in(page, base_url)
    expect = playwright_api.expect
    expect(page.locator("#reminders-warning")).to_have_text(texts.REACH_WARNING)
    for row in page.locator("#reminders-table tbody tr").all():
        expect(row).to_contain_text("待发送")
        expect(row).to_contain_text("现在可送达 1/3 人（客服消息 1），2 人无法送达")


def test_organizer_answers_a_follower_question_from_the_inbox(page, live_app, fake_wechat, clock):
    app, base_url = live_app
    with app.state.services.sessions.begin() as session:
        for openid in ("o-alice", "o-bob"):
            store_question(session, event_id="meetup-10", openid=openid, text="可以停车吗？", words="可以停车吗", now=clock.now())
    log_in(page, base_url)
    expect = playwright_api.expect
    expect(page.locator("#inbox-table tbody tr")).to_have_count(1)
    expect(page.locator("#inbox-table tbody tr td").nth(1)).to_have_text("2")

    page.get_by_label("回答：可以停车吗？").fill("工作人员的答复")
    page.get_by_role("button", name="回答并发送").click()
    expect(page.locator("#inbox-message")).to_contain_text("已回答 2 位提问者")
    expect(page.locator("#inbox-rule")).to_contain_text('keywords = ["可以停车吗"]')
    expect(page.locator("#inbox-table tbody tr")).to_have_count(0)

    build_sender(app.state.services.settings, app.state.services.sessions, clock).run_once()
    assert sorted(message["touser"] for message in fake_wechat.messages()) == ["o-alice", "o-bob"]
    page.reload()
    expect(page.locator("#inbox-answered tbody tr")).to_have_count(2)
