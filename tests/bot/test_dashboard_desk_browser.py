"""The check-in desk in a real browser, on a laptop (1280 px) and a phone (390 px): search, check in (with
the warning for an online registrant), undo, cancel (the waitlist moves up), walk-ins; and nothing on the
page wider than the phone. Screenshots are kept in the test's tmp_path."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.devtools.fake_wechat import LoopbackServer
from models.registration import ONLINE
from tests.conftest import BEFORE_EVENT, SHANGHAI
from tests.dashboard_pages import horizontal_overflow, log_in, shown_by_control
from tests.organizer_factories import ADMIN_TOKEN, EVENT_ID, add_registration

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

# Half an hour before the shipped meetup starts: check-in is open.
MEETUP_AFTERNOON = datetime(2023, 3, 26, 13, 30, tzinfo=SHANGHAI)
LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def desk_server(make_app, outbound_settings, clock):
    """The meetup's afternoon; two seats: 王小丽 and 李雷 (checked in) on site, 欧丽 online, 陈卡 waitlisted."""
    clock.set(MEETUP_AFTERNOON)
    content = outbound_settings.content
    content = content.model_copy(update={"events": [content.events[0].model_copy(update={"capacity": 2})]})
    app = make_app(outbound_settings.model_copy(update={"admin_token": ADMIN_TOKEN, "content": content}))
    now = clock.now()
    with app.state.services.sessions.begin() as session:
        add_registration(session, "o-alice", now=now, name="王小丽", phone="13812345678", capacity=2)
        add_registration(session, "o-bob", now=now, name="李雷", phone="13900001111", capacity=2, checked_in=True)
        add_registration(session, "o-olivia", now=now, name="欧丽", phone="13700002222", capacity=2, attendance=ONLINE)
        carol = add_registration(session, "o-carol", now=now, name="陈卡", phone="13600003333", capacity=2)
        codes = {"陈卡": carol.checkin_code}
    with LoopbackServer(app, name="desk-app") as server:
        yield server.base_url, codes


def open_page(browser, base_url, viewport, **context_options):
    context = browser.new_context(locale="zh-CN", viewport=viewport, **context_options)
    page = context.new_page()
    log_in(page, base_url)
    expect(page.locator("#event-cards")).to_contain_text("2 / 2")
    expect(page.locator("#registrations-table tbody tr")).to_have_count(4)
    return context, page


def search(page, words: str) -> None:
    page.get_by_label("查找报名者").fill(words)
    page.get_by_label("查找报名者").press("Enter")


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_desk_checks_in_warns_undoes_cancels_and_adds_walk_ins(browser, desk_server, viewport, tmp_path):
    base_url, codes = desk_server
    context, page = open_page(browser, base_url, viewport)
    assert horizontal_overflow(page) == 0
    page.get_by_role("button", name="签到台").click()
    message = page.locator("#desk-message")
    expect(page.get_by_label("签到活动")).to_have_value(EVENT_ID)  # the event taking place today
    expect(page.locator("#desk-no-event")).to_be_hidden()
    expect(page.locator("#desk-figures")).to_contain_text("已签到 1 人")
    expect(page.locator("#desk-list li")).to_have_count(4)  # today's attendees, each with their status
    assert horizontal_overflow(page) == 0

    # An online registrant who turns up at the door: checked in, with a warning.
    search(page, "欧丽")
    expect(page.locator("#desk-list li")).to_have_count(1)
    page.get_by_role("button", name="签到：欧丽").click()
    expect(message).to_have_text("欧丽 签到成功。注意：欧丽 报名的是线上观看，没有为其预留现场座位。")
    expect(message).to_have_class("warning")
    expect(page.locator("#desk-recent")).to_contain_text("欧丽（线上报名）")

    # By the phone's last digits; a mistaken check-in is undone.
    search(page, "1111")
    page.get_by_role("button", name="撤销签到：李雷").click()
    expect(message).to_have_text("已撤销 李雷 的签到。")
    expect(page.get_by_role("button", name="签到：李雷")).to_be_visible()

    # A cancellation at the desk gives the seat to the head of the waitlist; the room is still full.
    search(page, "王小丽")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="取消报名：王小丽").click()
    expect(message).to_have_text("已取消 王小丽 的报名。候补 陈卡 已获得名额并收到通知。")
    page.get_by_text("添加现场补登（未报名到场）").click()
    page.get_by_label("姓名").fill("赵六")
    page.get_by_label("手机号", exact=True).fill("136 0000 1111")
    page.get_by_role("button", name="添加并签到").click()
    expect(message).to_have_text("添加失败：现场 2 个座位已满，不能再添加现场补登。")

    # By check-in code: the promoted registrant cancels too, and the walk-in takes the seat.
    search(page, codes["陈卡"].lower())
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="取消报名：陈卡").click()
    expect(message).to_have_text("已取消 陈卡 的报名。")
    page.get_by_role("button", name="添加并签到").click()
    expect(message).to_have_text("已添加现场补登 赵六 并签到。")
    expect(page.locator("#desk-figures")).to_contain_text("含现场补登 1")
    expect(page.locator("#desk-recent")).to_contain_text("赵六")
    assert horizontal_overflow(page) == 0
    page.screenshot(path=str(tmp_path / f"desk-{viewport['width']}.png"), full_page=True)

    page.get_by_role("button", name="管理").click()
    expect(page.locator("#event-cards")).to_contain_text("现场补登")
    assert horizontal_overflow(page) == 0
    page.screenshot(path=str(tmp_path / f"dashboard-{viewport['width']}.png"), full_page=True)
    context.close()


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_on_a_day_without_an_event_the_desk_says_so_and_the_organizer_picks_one(
    browser, desk_server, clock, viewport, tmp_path
):
    clock.set(BEFORE_EVENT)
    base_url, _codes = desk_server
    context, page = open_page(browser, base_url, viewport)
    page.get_by_role("button", name="签到台").click()
    expect(page.locator("#desk-no-event")).to_have_text("今天（2023年3月20日）没有活动，请选择要签到的活动。")
    expect(page.get_by_label("查找报名者")).to_be_hidden()
    expect(page.locator("#desk-list")).to_be_hidden()
    page.get_by_label("签到活动").select_option(EVENT_ID)
    expect(page.locator("#desk-event-name")).to_contain_text("火山引擎开发者社区 Meetup 第十期")
    expect(page.locator("#desk-list li")).to_have_count(4)
    search(page, "王小丽")
    page.get_by_role("button", name="签到：王小丽").click()
    expect(page.locator("#desk-message")).to_have_text("王小丽 签到成功。")
    assert horizontal_overflow(page) == 0
    page.screenshot(path=str(tmp_path / f"desk-no-event-{viewport['width']}.png"), full_page=True)
    context.close()


def test_the_list_filters_by_attendance(browser, desk_server):
    base_url, _codes = desk_server
    context, page = open_page(browser, base_url, PHONE)
    page.get_by_label("参加方式").select_option("online")
    expect(page.locator("#registrations-table tbody tr")).to_have_count(1)
    expect(page.locator("#registrations-table tbody tr")).to_contain_text("线上")
    page.get_by_label("发送对象").select_option("online")
    expect(page.locator("#audience-preview")).to_have_text("将发送给 1 人。")
    context.close()


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_send_time_is_a_chinese_picker_that_sends_the_events_time(browser, desk_server, viewport, tmp_path):
    base_url, _codes = desk_server
    # The organizer's laptop is set to New York: the time picked is still the event's (Beijing).
    context, page = open_page(browser, base_url, viewport, timezone_id="America/New_York")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    picker = page.get_by_label("定时发送（可选）")
    assert picker.get_attribute("type") == "datetime-local"
    expect(page.locator("#send-at-hint")).to_have_text("留空则立即发送；时间按活动所在地（中国标准时间）计算。")
    page.get_by_label("消息内容").fill("直播马上开始")

    # Half an hour ago on the event clock: refused, in Chinese.
    picker.fill("2023-03-26T13:00")
    expect(page.locator("#send-at-hint")).to_have_text("将于 2023年3月26日星期日 13:00（中国标准时间）发送。")
    page.get_by_role("button", name="预览并发送").click()
    page.get_by_role("button", name="确认发送").click()
    expect(page.locator("#broadcast-error")).to_have_text(
        "发送失败：发送时间：这个时间已经过去了，请选一个以后的时间；要立即发送，请留空。"
    )

    picker.fill("2023-03-26T16:00")
    # Drawn by the browser in its own language (Chinese, as an organizer's): year first, a 24-hour clock.
    shown = shown_by_control(page, "#send-at")
    assert shown.startswith("2023/03/26") and shown.endswith("16:00") and "PM" not in shown, shown
    page.get_by_role("button", name="预览并发送").click()
    expect(page.locator("#confirm-question")).to_have_text(
        "确认于 2023年3月26日星期日 16:00（中国标准时间）发送给「已确认报名」共 3 人？"
    )
    assert horizontal_overflow(page) == 0
    page.screenshot(path=str(tmp_path / f"broadcast-picker-{viewport['width']}.png"), full_page=True)
    with page.expect_request(lambda request: request.method == "POST" and request.url.endswith("/broadcasts")) as sent:
        page.get_by_role("button", name="确认发送").click()
    assert sent.value.post_data_json["send_at"] == "2023-03-26T16:00:00+08:00"
    expect(page.locator("#report-status")).to_contain_text("已排期，计划于 2023/3/26 16:00:00")
    expect(picker).to_have_value("")
    context.close()
