"""Reminders decided against a real database with a controllable clock: who gets each, once, and when not."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.settings import Settings
from models.db import create_db_engine, session_factory
from models.outbox import Campaign, Delivery
from models.registration import ONLINE, ONSITE, Registration, cancel, register
from models.reminder import SENT, SKIPPED, ReminderRun
from scheduler.reminders import Reminder, fire_due_reminders, reminder_statuses, reminders_of, run_reminder

EVENT_ID = "meetup-10"


def with_event(settings: Settings, make_settings, **changes) -> Settings:
    """Settings whose first event has ``changes`` (a moved start, other offsets…)."""
    content = settings.content
    event = content.events[0].model_copy(update=changes)
    return make_settings(content=content.model_copy(update={"events": [event, *content.events[1:]]}))


def with_reminders(settings: Settings, make_settings, **changes) -> Settings:
    content = settings.content
    return make_settings(content=content.model_copy(update={"reminders": content.reminders.model_copy(update=changes)}))


@pytest.fixture
def sessions(settings):
    engine = create_db_engine(settings.database_url)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def event(settings):
    return settings.content.event_by_id(EVENT_ID)


@pytest.fixture
def day_before(event) -> Reminder:
    return Reminder(event, "1d")


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


def test_reminders_fall_due_at_each_offset_before_the_start(event):
    due = {reminder.offset_text: reminder.due_at for reminder in reminders_of(event)}
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
    settings = with_event(settings, make_settings, stream_url="https://live.example.org/meetup-10")
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
    assert run.reason == "31 min late, beyond the grace window of 30 min"
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
    settings = with_event(settings, make_settings, reminders=["10m"])
    sign_up(sessions, "o-1", clock.now())
    # Five minutes late (well within the grace window) but the event began a minute ago.
    clock.set(event.starts_at + timedelta(minutes=1))

    [run] = fire_due_reminders(sessions, settings, clock.now())

    assert run.state == SKIPPED and run.reason.startswith("event already started")
    assert received(sessions) == {}


def test_someone_confirmed_after_a_reminders_time_gets_only_the_next_one(sessions, settings, clock, day_before, two_hours_before):
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

    enabled = with_event(with_reminders(settings, make_settings, remind_waitlisted=True), make_settings, reminders=["1d", "20h"])
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


def test_rescheduled_event_gets_its_reminders_at_the_new_times(sessions, settings, make_settings, clock, event, day_before):
    sign_up(sessions, "o-1", clock.now())
    clock.set(day_before.due_at)
    fire_due_reminders(sessions, settings, clock.now())
    # The organisers move the meetup a week later and restart the bot.
    moved = with_event(settings, make_settings, starts_at=event.starts_at + timedelta(days=7), ends_at=event.ends_at + timedelta(days=7))
    clock.set(event.starts_at - timedelta(hours=2))

    assert fire_due_reminders(sessions, moved, clock.now()) == []

    clock.set(event.starts_at + timedelta(days=6))
    [run] = fire_due_reminders(sessions, moved, clock.now())
    assert (run.offset_text, run.due_at) == ("1d", event.starts_at + timedelta(days=6))
    texts = received(sessions)["o-1"]
    assert len(texts) == 2 and "2023年4月2日（周日）" in texts[1]


def test_removed_reminder_is_not_run(sessions, settings, make_settings, clock, day_before):
    sign_up(sessions, "o-1", clock.now())
    only_two_hours = with_event(settings, make_settings, reminders=["2h"])
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
            runs = list(pool.map(lambda engine: run_reminder(session_factory(engine), settings, EVENT_ID, "1d", clock.now()), engines))

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
