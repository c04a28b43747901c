"""Reminders decided against a real database with a controllable clock: who gets each, once, and when not."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.cli import app as cli
from bot.settings import Settings
from models.content import ConfigError, load_content
from models.db import create_db_engine, session_factory
from models.outbox import CLAIMED, PENDING, SENDING, UNKNOWN, Campaign, Delivery
from models.outbox import SENT as DELIVERED
from models.registration import ONLINE, ONSITE, Registration, cancel, register
from models.reminder import SENT, SKIPPED, ReminderRun
from scheduler.reminders import (
    AT_START,
    Reminder,
    fire_due_reminders,
    reminder_statuses,
    reminders_of,
    run_reminder,
)
from scheduler.sender import build_sender
from tests.conftest import FAKE_APP_ID, FAKE_APP_SECRET, REPO_ROOT
from tests.outbound import config_with_concurrency, follower_wrote, outbound_environment
from tests.polling import wait_until
from tests.registration_steps import (
    register_via_chat,
    registration_of,
    settings_with_event,
)

EVENT_ID = "meetup-10"


def with_reminders(settings: Settings, make_settings, **changes) -> Settings:
    """``settings`` with ``[reminders]`` changed (grace, templates, remind_waitlisted)."""
    content = settings.content
    return make_settings(content=content.model_copy(update={"reminders": content.reminders.model_copy(update=changes)}))


@pytest.fixture
def event(settings):
    return settings.content.event_by_id(EVENT_ID)


@pytest.fixture
def two_hours_before(event) -> Reminder:
    return Reminder(event, "2h")


def sign_up(sessions, openid, when, *, attendance=ONSITE, capacity=200) -> Registration:
    with sessions.begin() as session:
        return register(
            session, event_id=EVENT_ID, openid=openid, answers={"name": openid}, attendance=attendance,
            capacity=capacity, now=when,
        )


def received(sessions) -> dict[str, list[str]]:
    """Each follower's reminder texts, oldest first."""
    with sessions() as session:
        rows = session.execute(
            select(Delivery.openid, func.coalesce(Delivery.text, Campaign.text))
            .join(Campaign, Campaign.id == Delivery.campaign_id)
            .where(Campaign.purpose == "reminder")
            .order_by(Delivery.id)
        )
        texts: dict[str, list[str]] = {}
        for openid, text in rows:
            texts.setdefault(openid, []).append(text)
        return texts


def test_reminders_fall_due_at_each_offset_before_the_start(event, settings):
    due = {reminder.offset_text: reminder.due_at for reminder in reminders_of(event, settings.content.reminders)}
    assert due == {"1d": event.starts_at - timedelta(days=1), "2h": event.starts_at - timedelta(hours=2)}


def test_each_reminder_goes_once_to_each_confirmed_registrant_and_only_them(
    sessions, settings, clock, day_before, two_hours_before
):
    onsite = sign_up(sessions, "o-onsite", clock.now(), capacity=1)
    online = sign_up(sessions, "o-online", clock.now(), attendance=ONLINE, capacity=1)
    sign_up(sessions, "o-waiting", clock.now(), capacity=1)
    leaving = sign_up(sessions, "o-cancelled", clock.now(), attendance=ONLINE, capacity=1)
    with sessions.begin() as session:
        cancel(session, session.merge(leaving), capacity=1, now=clock.now())

    clock.set(day_before.due_at)
    decided = fire_due_reminders(sessions, settings, clock.now())
    assert [(run.offset_text, run.state, run.recipients) for run in decided] == [("1d", SENT, 2)]
    # Firing again, or a minute later, sends nothing more.
    assert fire_due_reminders(sessions, settings, clock.now()) == []
    clock.advance(timedelta(minutes=1))
    assert fire_due_reminders(sessions, settings, clock.now()) == []

    clock.set(two_hours_before.due_at)
    assert [run.offset_text for run in fire_due_reminders(sessions, settings, clock.now())] == ["2h"]

    texts = received(sessions)
    assert set(texts) == {"o-onsite", "o-online"}
    assert all(len(follower_texts) == 2 for follower_texts in texts.values())
    assert onsite.checkin_code in texts["o-onsite"][0] and "还有 1 天" in texts["o-onsite"][0]
    assert "还有 2 小时" in texts["o-onsite"][1]
    assert "直播链接" in texts["o-online"][0] and online.checkin_code not in texts["o-online"][0]


def test_reminder_text_has_the_events_facts_from_config(sessions, settings, clock, event, day_before):
    registration = sign_up(sessions, "o-1", clock.now())
    clock.set(day_before.due_at)
    fire_due_reminders(sessions, settings, clock.now())

    [text] = received(sessions)["o-1"]
    assert event.title in text and event.venue in text and "2023年3月26日（周日）14:00–17:00" in text
    assert registration.checkin_code in text


def test_online_reminder_carries_the_stream_link_once_announced(sessions, settings, make_settings, clock, day_before):
    settings = settings_with_event(make_settings, stream_url="https://live.example.org/meetup-10")
    sign_up(sessions, "o-1", clock.now(), attendance=ONLINE)
    clock.set(day_before.due_at)
    fire_due_reminders(sessions, settings, clock.now())

    assert "https://live.example.org/meetup-10" in received(sessions)["o-1"][0]


def test_nothing_is_sent_before_a_reminders_time(sessions, settings, clock, day_before):
    sign_up(sessions, "o-1", clock.now())
    clock.set(day_before.due_at - timedelta(seconds=1))

    assert fire_due_reminders(sessions, settings, clock.now()) == []
    assert run_reminder(sessions, settings, EVENT_ID, "1d", clock.now()) is None
    assert received(sessions) == {}


def test_reminder_missed_while_down_is_sent_late_within_the_grace_window(sessions, settings, clock, day_before):
    sign_up(sessions, "o-1", clock.now())
    clock.set(day_before.due_at + timedelta(minutes=29))

    [run] = fire_due_reminders(sessions, settings, clock.now())

    assert (run.state, run.recipients) == (SENT, 1)
    assert "还有 23 小时 31 分钟" in received(sessions)["o-1"][0]


def test_reminder_missed_beyond_the_grace_window_is_skipped_with_the_reason(sessions, settings, clock, day_before):
    sign_up(sessions, "o-1", clock.now())
    clock.set(day_before.due_at + timedelta(minutes=31))

    [run] = fire_due_reminders(sessions, settings, clock.now())

    assert run.state == SKIPPED
    assert run.reason == "晚了 31 分钟，超过允许的 30 分钟（到时没有进程在运行调度器）"
    assert received(sessions) == {}
    # Skipped is final: the reminder is not reconsidered on a later start.
    assert fire_due_reminders(sessions, settings, clock.now() + timedelta(minutes=5)) == []


def test_grace_window_comes_from_config(sessions, settings, make_settings, clock, day_before):
    settings = with_reminders(settings, make_settings, grace="2h")
    sign_up(sessions, "o-1", clock.now())
    clock.set(day_before.due_at + timedelta(minutes=90))

    [run] = fire_due_reminders(sessions, settings, clock.now())

    assert run.state == SENT


def test_reminder_is_never_sent_after_the_event_started(sessions, settings, make_settings, clock, event):
    settings = settings_with_event(make_settings, reminders=["10m"])
    sign_up(sessions, "o-1", clock.now())
    # Five minutes late (well within the grace window) but the event began a minute ago.
    clock.set(event.starts_at + timedelta(minutes=1))

    [run] = fire_due_reminders(sessions, settings, clock.now())

    assert run.state == SKIPPED and run.reason.endswith("活动已经开始")
    assert received(sessions) == {}


def test_someone_confirmed_after_a_reminders_time_gets_only_the_next_one(
    sessions, settings, clock, day_before, two_hours_before
):
    sign_up(sessions, "o-early", clock.now())
    clock.set(day_before.due_at)
    fire_due_reminders(sessions, settings, clock.now())
    clock.set(two_hours_before.due_at - timedelta(hours=1))
    sign_up(sessions, "o-late", clock.now())
    clock.set(two_hours_before.due_at)
    fire_due_reminders(sessions, settings, clock.now())

    texts = received(sessions)
    assert len(texts["o-early"]) == 2
    assert len(texts["o-late"]) == 1 and "还有 2 小时" in texts["o-late"][0]


def test_someone_confirmed_after_a_missed_reminders_time_does_not_get_it_late(sessions, settings, clock, day_before):
    sign_up(sessions, "o-before", clock.now())
    # The bot is down at the reminder's time; someone registers ten minutes later (another process).
    sign_up(sessions, "o-after", day_before.due_at + timedelta(minutes=10))
    clock.set(day_before.due_at + timedelta(minutes=20))

    [run] = fire_due_reminders(sessions, settings, clock.now())

    assert run.recipients == 1
    assert set(received(sessions)) == {"o-before"}


def test_someone_promoted_from_the_waitlist_gets_the_upcoming_reminders(
    sessions, settings, clock, day_before, two_hours_before
):
    seated = sign_up(sessions, "o-seated", clock.now(), capacity=1)
    sign_up(sessions, "o-waiting", clock.now(), capacity=1)
    clock.set(day_before.due_at)
    fire_due_reminders(sessions, settings, clock.now())
    clock.advance(timedelta(hours=3))
    with sessions.begin() as session:
        change = cancel(session, session.merge(seated), capacity=1, now=clock.now())
        assert [registration.openid for registration in change.promoted] == ["o-waiting"]
    clock.set(two_hours_before.due_at)
    fire_due_reminders(sessions, settings, clock.now())

    texts = received(sessions)
    assert len(texts["o-seated"]) == 1
    assert len(texts["o-waiting"]) == 1 and "还有 2 小时" in texts["o-waiting"][0]


def test_waitlisted_people_get_the_short_note_only_when_enabled(sessions, settings, make_settings, clock, day_before):
    sign_up(sessions, "o-seated", clock.now(), capacity=1)
    sign_up(sessions, "o-waiting", clock.now(), capacity=1)
    clock.set(day_before.due_at)

    fire_due_reminders(sessions, settings, clock.now())
    assert set(received(sessions)) == {"o-seated"}

    with_twenty_hours = settings_with_event(make_settings, reminders=["1d", "20h"])
    enabled = with_reminders(with_twenty_hours, make_settings, remind_waitlisted=True)
    clock.set(enabled.content.events[0].starts_at - timedelta(hours=20))
    [run] = fire_due_reminders(sessions, enabled, clock.now())

    assert run.recipients == 2
    [note] = received(sessions)["o-waiting"]
    assert "候补" in note


def test_reminder_templates_come_from_config(sessions, settings, make_settings, clock, day_before):
    settings = with_reminders(settings, make_settings, onsite="{title} 明天见，签到码 {checkin_code}")
    registration = sign_up(sessions, "o-1", clock.now())
    clock.set(day_before.due_at)
    fire_due_reminders(sessions, settings, clock.now())

    assert received(sessions)["o-1"] == [f"{settings.content.events[0].title} 明天见，签到码 {registration.checkin_code}"]


def test_unknown_placeholder_in_a_reminder_template_stops_start_up_naming_the_field(tmp_path):
    config = (REPO_ROOT / "config.toml").read_text(encoding="utf-8")
    broken = tmp_path / "config.toml"
    broken.write_text(config.replace("你的签到码：{checkin_code}", "你的签到码：{code}"), encoding="utf-8")

    with pytest.raises(ConfigError) as error:
        load_content(broken)

    assert "reminders.onsite: unknown placeholder {code}" in str(error.value)


def test_rescheduled_event_gets_its_reminders_at_the_new_times(
    sessions, settings, make_settings, clock, event, day_before
):
    sign_up(sessions, "o-1", clock.now())
    clock.set(day_before.due_at)
    fire_due_reminders(sessions, settings, clock.now())
    # The organisers move the meetup a week later and restart the bot.
    week = timedelta(days=7)
    moved = settings_with_event(make_settings, starts_at=event.starts_at + week, ends_at=event.ends_at + week)
    clock.set(event.starts_at - timedelta(hours=2))

    assert fire_due_reminders(sessions, moved, clock.now()) == []

    clock.set(event.starts_at + timedelta(days=6))
    [run] = fire_due_reminders(sessions, moved, clock.now())
    assert (run.offset_text, run.due_at) == ("1d", event.starts_at + timedelta(days=6))
    texts = received(sessions)["o-1"]
    assert len(texts) == 2 and "2023年4月2日（周日）" in texts[1]


def test_removed_reminder_is_not_run(sessions, settings, make_settings, clock, day_before):
    sign_up(sessions, "o-1", clock.now())
    only_two_hours = settings_with_event(make_settings, reminders=["2h"])
    clock.set(day_before.due_at)

    assert run_reminder(sessions, only_two_hours, EVENT_ID, "1d", clock.now()) is None
    assert received(sessions) == {}


def test_reminder_decided_by_two_processes_at_once_is_sent_once(settings, clock, day_before):
    engines = [create_db_engine(settings.database_url) for _ in range(4)]
    try:
        first = session_factory(engines[0])
        for number in range(5):
            sign_up(first, f"o-{number}", clock.now())
        clock.set(day_before.due_at)
        with ThreadPoolExecutor(max_workers=len(engines)) as pool:
            runs = list(
                pool.map(lambda engine: run_reminder(session_factory(engine), settings, EVENT_ID, "1d", clock.now()), engines)
            )

        assert {run.id for run in runs} == {runs[0].id}
        assert {openid: len(texts) for openid, texts in received(first).items()} == {f"o-{n}": 1 for n in range(5)}
        with first() as session:
            assert session.scalar(select(func.count()).select_from(ReminderRun)) == 1
    finally:
        for engine in engines:
            engine.dispose()


def test_statuses_list_each_reminder_with_its_state_and_delivery_counts(sessions, settings, clock, day_before):
    sign_up(sessions, "o-1", clock.now())
    sign_up(sessions, "o-2", clock.now())
    clock.set(day_before.due_at)
    fire_due_reminders(sessions, settings, clock.now())

    with sessions() as session:
        statuses = reminder_statuses(session, settings.content, EVENT_ID)

    assert [(status.reminder.offset_text, status.state, status.deliveries) for status in statuses] == [
        ("1d", SENT, {"pending": 2}),
        ("2h", "scheduled", {}),
    ]


def test_reminder_reaches_a_follower_registered_in_the_chat_through_wechat(
    wechat, app, settings, make_settings, fake_wechat, clock, day_before
):
    register_via_chat(wechat, "o-chat")
    code = registration_of(app, "o-chat").checkin_code
    clock.set(day_before.due_at - timedelta(hours=1))
    wechat.send_text("o-chat", "地点")
    app.state.services.activity.flush()  # what the app's recorder does within half a second
    fake_wechat.tell_follower("o-chat", last_interaction_at=clock.now())
    clock.set(day_before.due_at)
    fake_wechat.set_now(clock.now())

    fire_due_reminders(app.state.services.sessions, settings, clock.now())
    outbound = make_settings(
        wechat_app_id=FAKE_APP_ID, wechat_app_secret=FAKE_APP_SECRET, wechat_api_base_url=fake_wechat.base_url
    )
    build_sender(outbound, app.state.services.sessions, clock).run_until_idle()

    [message] = fake_wechat.messages()
    assert message["touser"] == "o-chat"
    assert code in message["body"]["text"]["content"] and "【活动提醒】" in message["body"]["text"]["content"]


def _worker(environment: dict[str, str], now, log: Path) -> subprocess.Popen:
    """``eventbot worker`` in a process of its own, its clock starting at ``now``."""
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "worker", "--tick-seconds", "0.5"],
            env={**environment, "EVENTBOT_NOW": now.isoformat()},
            cwd=REPO_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.slow
def test_worker_killed_mid_reminder_and_restarted_reminds_everyone_once(
    sessions, settings, fake_wechat, clock, day_before, tmp_path
):
    openids = [f"o-{number:02d}" for number in range(30)]
    codes = {openid: sign_up(sessions, openid, clock.now()).checkin_code for openid in openids}
    for openid in openids:
        follower_wrote(sessions, fake_wechat, openid, day_before.due_at - timedelta(hours=1))
    fake_wechat.set_now(day_before.due_at)
    # Slow answers, and fewer calls at a time than registrants, keep deliveries claimed or mid-call when
    # the kill lands.
    fake_wechat.inject("latency", seconds=0.5, path="message/custom/send", times=None)
    environment = outbound_environment(settings, fake_wechat, config_with_concurrency(tmp_path, 4))
    log = tmp_path / "workers.log"

    first = _worker(environment, day_before.due_at - timedelta(seconds=1), log)
    wait_until(fake_wechat.messages, timeout=60, what="the first worker to send")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    fake_wechat.clear_faults()
    sent_before_the_kill = len(fake_wechat.messages())

    # Back ten minutes later (within the grace window): its sender resolves the dead worker's rows.
    second = _worker(environment, day_before.due_at + timedelta(minutes=10), log)
    try:
        wait_until(lambda: not _unfinished(sessions), timeout=60, what="every delivery to be finished")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)

    received = Counter(message["touser"] for message in fake_wechat.messages())
    texts = {message["touser"]: message["body"]["text"]["content"] for message in fake_wechat.messages()}
    with sessions() as session:
        rows = session.execute(select(Delivery.openid, Delivery.status).join(Campaign)).all()
        assert session.scalar(select(func.count()).select_from(Campaign)) == 1
        assert session.scalar(select(func.count()).select_from(ReminderRun)) == 1
    assert sorted(openid for openid, _ in rows) == openids
    assert max(received.values()) == 1, "somebody got the reminder twice"
    assert all(received[openid] == 1 for openid, status in rows if status == DELIVERED)
    assert {status for _, status in rows} <= {DELIVERED, UNKNOWN}
    assert len(received) > sent_before_the_kill, "the restarted worker sent the rest"
    assert all(codes[openid] in text for openid, text in texts.items())


def _unfinished(sessions) -> bool:
    """No reminder enqueued yet, or some delivery still waiting or under way."""
    with sessions() as session:
        statuses = set(session.scalars(select(Delivery.status)))
    return not statuses or bool(statuses & {PENDING, CLAIMED, SENDING})


def test_reminders_command_lists_each_reminder_with_its_time_and_state(sessions, settings, clock, day_before):
    sign_up(sessions, "o-1", clock.now())
    clock.set(day_before.due_at)
    fire_due_reminders(sessions, settings, clock.now())
    environment = {"DATABASE_URL": settings.database_url, "EVENTBOT_CONFIG": str(REPO_ROOT / "config.toml")}

    result = CliRunner().invoke(cli, ["reminders"], env={**environment, "EVENTBOT_NOW": "2023-03-25T15:00:00+08:00"})

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "meetup-10: 火山引擎开发者社区 Meetup 第十期 (2023-03-26 14:00)",
        "    1d before  2023-03-25 14:00  发送中：0/1 人收到，1 人待发送",
        "    2h before  2023-03-26 12:00  待发送",
    ]


def test_online_registrants_get_the_stream_link_at_the_start_and_on_site_ones_nothing_more(
    sessions, make_settings, clock, event
):
    settings = settings_with_event(make_settings, stream_url="https://live.example.org/meetup-10")
    sign_up(sessions, "o-onsite", clock.now())
    online = sign_up(sessions, "o-online", clock.now(), attendance=ONLINE)
    clock.set(event.starts_at)

    decided = {run.offset_text: run for run in fire_due_reminders(sessions, settings, clock.now())}

    assert (decided[AT_START].state, decided[AT_START].recipients) == (SENT, 1)
    [text] = received(sessions)["o-online"]
    assert text.startswith("【直播开始】") and "https://live.example.org/meetup-10" in text
    assert online.checkin_code not in text
    assert "o-onsite" not in received(sessions)


def test_the_message_at_the_start_needs_a_stream_link_and_can_be_turned_off(make_settings, settings):
    with_link = settings_with_event(make_settings, stream_url="https://live.example.org/meetup-10")
    turned_off = with_reminders(with_link, make_settings, online_at_start=False)

    def offsets(settings) -> list[str]:
        return [reminder.offset_text for reminder in reminders_of(settings.content.events[0], settings.content.reminders)]

    assert offsets(with_link) == ["1d", "2h", AT_START]
    assert offsets(settings) == ["1d", "2h"]  # the shipped config announces no stream link yet
    assert offsets(turned_off) == ["1d", "2h"]


def test_the_message_at_the_start_is_not_sent_once_the_event_is_over(sessions, make_settings, clock, event):
    settings = settings_with_event(make_settings, stream_url="https://live.example.org/meetup-10")
    sign_up(sessions, "o-online", clock.now(), attendance=ONLINE)
    clock.set(event.ends_at)

    decided = {run.offset_text: run for run in fire_due_reminders(sessions, settings, clock.now())}

    assert decided[AT_START].state == SKIPPED and decided[AT_START].reason.endswith("活动已经结束")
    assert received(sessions) == {}
