"""Seats and the waitlist: capacity under real concurrent requests and concurrent ``register`` calls, promotion
on cancel (with its notice in the outbox), and switching between on site and online. Runs on SQLite and on
PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, text
from sqlalchemy.exc import IntegrityError

from bot.devtools.simulator import WeChatSimulator
from models import Campaign, Delivery, FormState, Registration, texts
from models.registration import AlreadyRegistered, register, seats_taken
from tests.conftest import BEFORE_EVENT, TOKEN
from tests.registration_steps import (
    EVENT_ID,
    fill_form,
    register_via_chat,
    registration_of,
    registrations,
    settings_with_event,
)

# Generous, so that under load every request still gets its passive reply instead of a late "success".
REPLY_BUDGET = 60.0


def all_at_once(work: Callable[[object], object], items: list) -> list:
    """``work(item)`` for every item, each in its own thread, released together; the results in order.
    An exception in any thread is raised here."""
    barrier = threading.Barrier(len(items))
    results: list = [None] * len(items)
    errors: list[BaseException] = []

    def run(index: int, item) -> None:
        try:
            barrier.wait()
            results[index] = work(item)
        except BaseException as error:  # re-raised in the test's thread below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index, item)) for index, item in enumerate(items)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def send_all_at_once(wechat: WeChatSimulator, messages: list[tuple[str, str]]) -> list[str]:
    """Post (openid, text) messages from one thread each, released together; the replies in order."""
    return all_at_once(lambda message: wechat.send_text(*message).content, messages)


@contextmanager
def seats_watched(app) -> Iterator[list[int]]:
    """Count the taken seats again and again, from another connection, while the body runs."""
    samples: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set() or not samples:
            with app.state.services.sessions() as session:
                samples.append(seats_taken(session, EVENT_ID))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield samples
    finally:
        done.set()
        watcher.join()


def seed_confirmed(app, count: int) -> None:
    """``count`` confirmed on-site registrations made earlier by other followers."""
    now = app.state.services.clock.now()
    with app.state.services.sessions.begin() as session:
        session.add_all(
            Registration(
                event_id=EVENT_ID, openid=f"o-earlier-{n}", attendance="onsite", status="confirmed",
                checkin_code=f"E{n:05d}", created_at=now, updated_at=now,
            )
            for n in range(count)
        )


def waitlist(app) -> list[tuple[str, int]]:
    return sorted((r.openid, r.position) for r in registrations(app) if r.status == "waitlisted")


def confirmed_on_site(app) -> list[Registration]:
    return [r for r in registrations(app) if r.status == "confirmed" and r.attendance == "onsite"]


def assert_waitlist_dense(app) -> None:
    positions = sorted(position for _, position in waitlist(app))
    assert positions == list(range(1, len(positions) + 1))


@pytest.fixture
def small_app(make_settings, make_app):
    """An app whose event has 3 seats."""
    return make_app(settings_with_event(make_settings, capacity=3))


@pytest.fixture
def small_wechat(small_app):
    with TestClient(small_app) as client:
        yield WeChatSimulator(client, TOKEN)


def test_fifty_followers_confirming_at_once_for_the_last_ten_seats(make_settings, make_app):
    app = make_app(make_settings(reply_budget_seconds=REPLY_BUDGET))
    capacity = app.state.services.settings.content.events[0].capacity
    seed_confirmed(app, capacity - 10)
    followers = [f"o-rush-{n:02d}" for n in range(50)]
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        for openid in followers:
            fill_form(wechat, openid)

        replies = send_all_at_once(wechat, [(openid, "确认") for openid in followers])

    assert len(confirmed_on_site(app)) == capacity
    rush = [r for r in registrations(app) if r.openid in followers]
    assert sum(r.status == "confirmed" for r in rush) == 10
    assert sum(r.status == "waitlisted" for r in rush) == 40
    assert sorted(r.position for r in rush if r.status == "waitlisted") == list(range(1, 41))
    assert len({r.checkin_code for r in registrations(app)}) == len(registrations(app))
    assert sum("报名成功！" in reply for reply in replies) == 10
    assert sum("已进入候补名单" in reply for reply in replies) == 40


def test_cancellations_and_registrations_at_once_keep_seats_and_the_line_right(make_settings, make_app):
    app = make_app(settings_with_event(make_settings, capacity=5).model_copy(update={"reply_budget_seconds": REPLY_BUDGET}))
    seated = [f"o-seated-{n}" for n in range(5)]
    waiting = [f"o-waiting-{n}" for n in range(10)]
    newcomers = [f"o-new-{n}" for n in range(5)]
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        for openid in seated + waiting:
            register_via_chat(wechat, openid)
        for openid in seated:
            wechat.send_text(openid, "取消报名")
        for openid in newcomers:
            fill_form(wechat, openid)

        with seats_watched(app) as seats:
            send_all_at_once(wechat, [(openid, "确认") for openid in seated + newcomers])

    assert max(seats) <= 5
    # A freed seat goes to the head of the line in the cancelling transaction, so a newcomer never finds
    # one free: the first five who waited are seated, everyone else waits in a line without gaps.
    assert sorted(r.openid for r in confirmed_on_site(app)) == sorted(waiting[:5])
    assert [openid for openid, _ in sorted(waitlist(app), key=lambda item: item[1])][:5] == waiting[5:]
    assert sorted(openid for openid, _ in waitlist(app)) == sorted(waiting[5:] + newcomers)
    assert_waitlist_dense(app)
    with app.state.services.sessions() as session:
        notified = session.scalars(select(Delivery.openid).join(Campaign).where(Campaign.purpose == "waitlist_promotion"))
        assert sorted(notified) == sorted(waiting[:5])


def test_a_full_event_puts_newcomers_on_the_waitlist_in_order(small_app, small_wechat):
    for n in range(5):
        reply = register_via_chat(small_wechat, f"o-{n}").content

    assert "已进入候补名单" in reply and "候补中（第 2 位）" in reply
    assert waitlist(small_app) == [("o-3", 1), ("o-4", 2)]
    assert "候补中（第 1 位）" in small_wechat.send_text("o-3", "我的报名").content


def test_online_registrants_are_never_waitlisted(small_app, small_wechat):
    for n in range(3):
        register_via_chat(small_wechat, f"o-{n}")

    reply = register_via_chat(small_wechat, "o-online", attendance="线上").content

    assert registration_of(small_app, "o-online").status == "confirmed"
    assert "报名成功" in reply


def test_a_cancelled_seat_goes_to_the_first_in_line_who_is_told(small_app, small_wechat):
    for n in range(6):
        register_via_chat(small_wechat, f"o-{n}")
    small_wechat.send_text("o-1", "取消报名")

    small_wechat.send_text("o-1", "确认")

    assert registration_of(small_app, "o-3").status == "confirmed"
    assert waitlist(small_app) == [("o-4", 1), ("o-5", 2)]
    assert len(confirmed_on_site(small_app)) == 3
    with small_app.state.services.sessions() as session:
        [campaign] = session.scalars(select(Campaign).where(Campaign.purpose == "waitlist_promotion")).all()
        [delivery] = session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id)).all()
    assert (delivery.openid, delivery.status) == ("o-3", "pending")
    assert "你已从候补转为正式报名" in campaign.text
    assert f"签到码：{registration_of(small_app, 'o-3').checkin_code}" in campaign.text


def test_a_waitlisted_cancellation_closes_the_gap_without_promoting(small_app, small_wechat):
    for n in range(6):
        register_via_chat(small_wechat, f"o-{n}")
    small_wechat.send_text("o-4", "取消报名")

    small_wechat.send_text("o-4", "确认")

    assert waitlist(small_app) == [("o-3", 1), ("o-5", 2)]
    with small_app.state.services.sessions() as session:
        assert session.scalars(select(Campaign)).all() == []


def test_switching_a_seat_to_online_promotes_the_first_in_line(small_app, small_wechat):
    for n in range(5):
        register_via_chat(small_wechat, f"o-{n}")

    reply = small_wechat.send_text("o-0", "改为线上").content

    assert "已修改参加方式" in reply and "线上观看直播" in reply
    assert registration_of(small_app, "o-0").attendance == "online"
    assert registration_of(small_app, "o-3").status == "confirmed"
    assert waitlist(small_app) == [("o-4", 1)]


def test_switching_to_on_site_when_full_joins_the_end_of_the_line(small_app, small_wechat):
    for n in range(4):
        register_via_chat(small_wechat, f"o-{n}")
    register_via_chat(small_wechat, "o-online", attendance="线上")

    reply = small_wechat.send_text("o-online", "改为现场").content

    assert "候补中（第 2 位）" in reply
    assert waitlist(small_app) == [("o-3", 1), ("o-online", 2)]
    assert small_wechat.send_text("o-online", "改为现场").content == texts.attendance_unchanged("onsite")


def test_a_waitlisted_follower_switching_to_online_is_confirmed_and_leaves_the_line(small_app, small_wechat):
    for n in range(6):
        register_via_chat(small_wechat, f"o-{n}")

    small_wechat.send_text("o-3", "改为线上")

    assert (registration_of(small_app, "o-3").status, registration_of(small_app, "o-3").attendance) == (
        "confirmed", "online",
    )
    assert waitlist(small_app) == [("o-4", 1), ("o-5", 2)]
    assert len(confirmed_on_site(small_app)) == 3


def test_switching_needs_a_registration_and_closes_at_the_start(small_app, small_wechat, clock):
    assert small_wechat.send_text("o-0", "改为线上").content == texts.NOT_REGISTERED
    register_via_chat(small_wechat, "o-0")
    clock.set(small_app.state.services.settings.content.events[0].starts_at)
    assert small_wechat.send_text("o-0", "改为线上").content == texts.CHANGES_CLOSED


def test_the_database_refuses_a_second_active_registration(app):
    now = app.state.services.clock.now()
    first = dict(event_id=EVENT_ID, openid="o-dup", attendance="onsite", status="confirmed", created_at=now, updated_at=now)
    with app.state.services.sessions.begin() as session:
        session.add(Registration(checkin_code="AAAAAA", **first))
    with pytest.raises(IntegrityError):
        with app.state.services.sessions.begin() as session:
            session.add(Registration(checkin_code="BBBBBB", **first))


def register_all_at_once(sessions, openids: list[str], *, capacity: int, attendance: str = "onsite") -> list[tuple]:
    """Each openid registers through ``register`` in its own thread and transaction, released together;
    per openid ("registered" or "already", the id of the registration it got or was shown)."""

    def attempt(openid: str) -> tuple:
        with sessions.begin() as session:
            try:
                registration = register(
                    session, event_id=EVENT_ID, openid=openid, answers={"name": openid}, attendance=attendance,
                    capacity=capacity, now=BEFORE_EVENT,
                )
            except AlreadyRegistered as already:
                return ("already", already.registration.id)
            return ("registered", registration.id)

    return all_at_once(attempt, openids)


def committed(sessions) -> list[Registration]:
    with sessions() as session:
        return list(session.scalars(select(Registration).where(Registration.event_id == EVENT_ID)))


def test_concurrent_registrations_fill_the_seats_then_the_waitlist_in_one_line(sessions):
    openids = [f"o-thread-{n:02d}" for n in range(24)]

    register_all_at_once(sessions, openids, capacity=5)

    rows = committed(sessions)
    assert sorted(r.openid for r in rows) == openids
    assert sum(r.status == "confirmed" for r in rows) == 5
    assert sorted(r.position for r in rows if r.status == "waitlisted") == list(range(1, 20))
    assert all((r.confirmed_at == r.created_at) == (r.status == "confirmed") for r in rows)
    assert len({r.checkin_code for r in rows}) == len(rows)


def test_online_registrations_at_once_are_all_confirmed_beside_a_full_event(sessions):
    register_all_at_once(sessions, ["o-seated"], capacity=1)

    register_all_at_once(sessions, [f"o-online-{n}" for n in range(6)], capacity=1, attendance="online")

    rows = committed(sessions)
    assert all(r.status == "confirmed" and r.position is None for r in rows)
    assert sum(r.attendance == "onsite" for r in rows) == 1


def test_one_follower_registering_twice_at_once_gets_one_registration(sessions):
    outcomes = register_all_at_once(sessions, ["o-twice", "o-twice"], capacity=5)

    [registration] = committed(sessions)
    assert sorted(outcomes) == [("already", registration.id), ("registered", registration.id)]


def test_only_the_deciding_insert_runs_under_the_seat_lock(sessions):
    """What the transaction wrote before ``register`` is flushed first; then come the seat lock and the
    insert that decides, so the lock is held for that insert and the commit only. On PostgreSQL the lock
    and the insert leave together through psycopg's pipeline, unseen by SQLAlchemy's events."""
    engine = sessions.kw["bind"]
    statements: list[str] = []

    def record(_connection, _cursor, statement, _parameters, _context, _executemany) -> None:
        statements.append(" ".join(statement.split())[:40])

    with sessions.begin() as session:
        session.add(FormState(openid="o-lock", answers={}))
        event.listen(engine, "before_cursor_execute", record)
        try:
            registration = register(
                session, event_id=EVENT_ID, openid="o-lock", answers={}, attendance="onsite", capacity=5,
                now=BEFORE_EVENT,
            )
        finally:
            event.remove(engine, "before_cursor_execute", record)
        if engine.dialect.name == "postgresql":
            our_advisory_locks = session.scalar(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            ))

    assert [r.openid for r in committed(sessions)] == ["o-lock"] and registration.status == "confirmed"
    if engine.dialect.name == "postgresql":
        assert [s.split(" (")[0] for s in statements] == ["INSERT INTO form_states"]
        assert our_advisory_locks == 1
        return
    form_written = statements.index(next(s for s in statements if s.startswith("INSERT INTO form_states")))
    deciding = [s for s in statements if s.startswith("INSERT INTO registrations")]
    assert len(deciding) == 1 and statements[-1] == deciding[0]
    assert form_written < len(statements) - 1


def test_a_confirmation_writes_only_its_reply_after_the_deciding_insert(app, wechat, clock):
    """The follower row and the form are written before the seat lock; what is left under it, besides the
    insert, is the reply stored for a retry (the form's, and the database ledger's), which depends on the
    insert's outcome."""
    engine = app.state.services.sessions.kw["bind"]
    statements: list[str] = []

    def record(_connection, _cursor, statement, _parameters, _context, _executemany) -> None:
        statements.append(" ".join(statement.split())[:40])

    fill_form(wechat, "o-confirm")
    app.state.services.activity.flush()  # the form's activity written behind now, not during the recording
    clock.advance(timedelta(minutes=1))  # so the follower's last interaction changes
    event.listen(engine, "before_cursor_execute", record)
    try:
        reply = wechat.send_text("o-confirm", "确认")
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert "报名成功！" in reply.content
    if engine.dialect.name == "postgresql":
        # The seat lock and the insert go by psycopg's pipeline, past SQLAlchemy's events, and the ledger is
        # Redis's: what is left is the follower's form row (read, closed, its reply remembered).
        kinds = {statement.split(" SET ")[0].split(",")[0] for statement in statements}
        assert kinds <= {"SELECT form_states.openid", "UPDATE form_states"}, statements
        assert registration_of(app, "o-confirm") is not None
        return
    deciding = statements.index(next(s for s in statements if s.startswith("INSERT INTO registrations")))
    assert {s.split(" SET ")[0] for s in statements[deciding + 1:]} <= {"UPDATE form_states", "UPDATE inbound_messages"}
