"""Questions answered from content alone: no transaction per message, follower activity written behind,
and never for a follower inside the registration form."""

from __future__ import annotations

import gc
from datetime import timedelta

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from bot.devtools.simulator import WeChatSimulator
from handlers.dispatch import Router
from handlers.matching import choice_list, has_text
from handlers.replies import Text
from models import Follower, InboundMessage, texts
from models.activity import Activity, ActivityRecorder
from models.db import create_db_engine, session_factory
from models.form_presence import MARKER_MARGIN_SECONDS, RedisFormPresence
from models.redis_guard import RedisGuard, redis_client
from tests.conftest import TOKEN


def follower(app, openid: str) -> Follower | None:
    with app.state.services.sessions() as session:
        return session.get(Follower, openid)


def count(app, model) -> int:
    with app.state.services.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def ledger_entries(app) -> int:
    """Messages the reply ledger holds: only the database path writes there."""
    settings = app.state.services.settings
    if not settings.redis_url:
        return count(app, InboundMessage)
    client = redis.Redis.from_url(settings.redis_url)
    try:
        return len(client.keys(f"{settings.redis_namespace}:inbound:*"))
    finally:
        client.close()


def test_a_question_writes_nothing_until_the_activity_is_flushed(app, wechat, clock):
    assert "议程" in wechat.send_text("o-asker", "议程").content
    assert follower(app, "o-asker") is None
    assert ledger_entries(app) == 0

    assert app.state.services.activity.flush() == 1

    row = follower(app, "o-asker")
    assert row.last_interaction_at == clock.now() and row.first_seen_at == clock.now()
    assert row.last_list == "agenda"


def test_the_apps_recorder_writes_behind_on_its_own(make_app, settings):
    app = make_app(settings)
    with TestClient(app) as client:
        WeChatSimulator(client, TOKEN).send_text("o-behind", "地点")
        # The lifespan's recorder thread flushes every half second; stopping the app flushes the rest.
    assert follower(app, "o-behind") is not None


def test_a_bare_number_after_the_agenda_answers_that_talk_before_any_flush(wechat, settings):
    wechat.send_text("o-numbers", "议程")
    second_talk = settings.content.events[0].talks[1]
    assert second_talk.title in wechat.send_text("o-numbers", "2").content


def test_a_choice_between_topics_is_answered_from_content_and_kept_for_the_number(app, wechat):
    assert wechat.send_text("o-choice", "时间地点").content == texts.topic_choice(["time", "venue"])
    assert follower(app, "o-choice") is None and ledger_entries(app) == 0

    assert app.state.services.activity.flush() == 1
    assert follower(app, "o-choice").last_list == choice_list(["time", "venue"])
    assert "大钟寺广场" in wechat.send_text("o-choice", "2").content


def test_a_follower_inside_the_form_gets_the_form_not_the_content_answer(app, wechat):
    wechat.send_text("o-form", "报名")
    reply = wechat.send_text("o-form", "地点？")
    # The question is answered, then the pending question is asked again: the form's own reply.
    assert "3F-18" in reply.content and "姓名" in reply.content


def test_an_organizer_is_never_answered_from_content(make_settings, make_app):
    calls = []
    router = Router("content")

    @router.handler(has_text)
    def answer(raw_text: str) -> Text:
        calls.append(raw_text)
        return Text("内容")

    app = make_app(make_settings(admin_openids_raw="o-organizer"), routers=[router])
    with TestClient(app) as client:
        WeChatSimulator(client, TOKEN).send_text("o-organizer", "你好")
    assert calls == ["你好"]
    assert ledger_entries(app) == 1  # the database path


def content_router(calls: list) -> Router:
    router = Router("content")

    @router.handler(has_text)
    def answer(raw_text: str, now) -> Text:
        calls.append((raw_text, now))
        return Text(f"{raw_text} @ {now:%H:%M:%S}")

    return router


def test_the_same_question_at_the_same_moment_is_worked_out_once(make_app, settings, clock):
    calls = []
    app = make_app(settings, routers=[content_router(calls)])
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        replies = [wechat.send_text(f"o-crowd-{n}", "议程").content for n in range(5)]
        other = wechat.send_text("o-crowd-0", "地点").content
    assert len(set(replies)) == 1 and other != replies[0]
    assert [text for text, _ in calls] == ["议程", "地点"]


@pytest.mark.parametrize("move", [timedelta(seconds=1), timedelta(days=3), -timedelta(seconds=1)])
def test_an_answer_is_worked_out_again_once_the_event_clock_moves(make_app, settings, clock, move):
    calls = []
    app = make_app(settings, routers=[content_router(calls)])
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        wechat.send_text("o-a", "时间")
        clock.set(clock.now() + move)
        later = wechat.send_text("o-b", "时间").content
    assert len(calls) == 2 and later.endswith(f"{clock.now():%H:%M:%S}")


def test_a_handler_that_needs_the_database_takes_the_database_path(app, wechat):
    # "我的报名" reads the follower's registration: answered in a transaction, with a ledger entry.
    wechat.send_text("o-mine", "我的报名")
    assert ledger_entries(app) == 1


def test_activity_merges_newest_first_and_keeps_rows_written_meanwhile(sessions, clock):
    recorder = ActivityRecorder(sessions)
    now = clock.now()
    recorder.record(Activity("o-merge", now, "agenda"))
    recorder.record(Activity("o-merge", now - timedelta(minutes=5), "help"))  # older: loses
    with sessions.begin() as session:
        # The database path wrote a later interaction meanwhile (another process, say).
        session.add(Follower(openid="o-merge", first_seen_at=now, last_interaction_at=now + timedelta(minutes=1), last_list="help"))

    assert recorder.flush() == 1
    with sessions() as session:
        row = session.get(Follower, "o-merge")
    assert row.last_interaction_at == now + timedelta(minutes=1) and row.last_list == "help"

    recorder.record(Activity("o-merge", now + timedelta(minutes=2)))
    recorder.flush()
    with sessions() as session:
        row = session.get(Follower, "o-merge")
    assert row.last_interaction_at == now + timedelta(minutes=2) and row.last_list == "help"


def test_a_flush_writes_every_queued_follower_new_and_known(sessions, clock):
    recorder = ActivityRecorder(sessions)
    now = clock.now()
    with sessions.begin() as session:
        session.add(Follower(openid="o-known", first_seen_at=now - timedelta(days=1),
                             last_interaction_at=now - timedelta(days=1), last_list="agenda"))
    recorder.record(Activity("o-new-1", now, "agenda"))
    recorder.record(Activity("o-new-2", now + timedelta(seconds=1)))
    recorder.record(Activity("o-known", now))

    assert recorder.flush() == 3
    with sessions() as session:
        rows = {row.openid: row for row in session.scalars(select(Follower))}
    assert (rows["o-new-1"].first_seen_at, rows["o-new-1"].last_list) == (now, "agenda")
    assert (rows["o-new-2"].last_interaction_at, rows["o-new-2"].last_list) == (now + timedelta(seconds=1), None)
    assert rows["o-new-2"].subscribed
    known = rows["o-known"]
    assert (known.first_seen_at, known.last_interaction_at, known.last_list) == (now - timedelta(days=1), now, "agenda")


def test_a_failed_flush_keeps_the_activity_for_the_next_one(tmp_path, clock):
    # A database never migrated: it has no followers table, so every flush fails.
    recorder = ActivityRecorder(session_factory(create_db_engine(f"sqlite:///{tmp_path}/empty.db")))
    recorder.record(Activity("o-kept", clock.now(), "agenda"))
    with pytest.raises(OperationalError):
        recorder.flush()
    assert recorder.take("o-kept") == Activity("o-kept", clock.now(), "agenda")


def test_redis_presence_marks_a_form_while_it_is_open(app, wechat, settings):
    if not settings.redis_url:
        pytest.skip("the Redis marker is the production path's")
    client = redis.Redis.from_url(settings.redis_url)
    marker = f"{settings.redis_namespace}:open-form:o-marked"
    try:
        assert not client.exists(marker)
        wechat.send_text("o-marked", "报名")
        lifetime = settings.content.registration.form_lifetime.total_seconds()
        assert lifetime < client.ttl(marker) <= lifetime + MARKER_MARGIN_SECONDS
        wechat.send_text("o-marked", "退出")
        assert not client.exists(marker)
    finally:
        client.close()


def test_an_unreachable_redis_means_maybe_so_the_database_path_answers(clock, sessions):
    presence = RedisFormPresence(RedisGuard(redis_client("redis://127.0.0.1:1/0")), "nowhere", sessions, clock)
    assert presence.may_be_open("o-anyone", clock.now()) is True


def test_a_question_that_needs_the_database_is_tried_from_content_once(make_app, settings):
    filtered = []
    router = Router("effects")

    def counting(context) -> bool:
        filtered.append(context.get("openid"))
        return True

    @router.handler(counting)
    def answer(session) -> Text:
        return Text("已记下")

    app = make_app(settings, routers=[router])
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        replies = [wechat.send_text(f"o-rush-{n}", "报名").content for n in range(3)]
    assert replies == ["已记下"] * 3
    # Once on the content path (which learnt that "报名" needs the database), then once per message there.
    assert filtered == ["o-rush-0", "o-rush-0", "o-rush-1", "o-rush-2"]


def test_presence_names_exactly_the_followers_inside_a_form(app, wechat, clock):
    wechat.send_text("o-inside", "报名")
    wechat.send_text("o-outside", "议程")
    presence = app.state.services.responder.presence
    assert presence.maybe_open_among(["o-inside", "o-outside", "o-stranger"], clock.now()) == {"o-inside"}


def test_a_form_step_leaves_the_follower_row_to_the_recorder(app, wechat, clock):
    wechat.send_text("o-stepper", "报名")
    assert follower(app, "o-stepper") is None  # no statement for it in the form's transaction
    app.state.services.activity.flush()
    assert follower(app, "o-stepper").last_interaction_at == clock.now()


def test_the_app_moves_its_start_up_objects_out_of_the_collectors_reach(make_app, settings):
    gc.unfreeze()
    with TestClient(make_app(settings)):
        assert gc.get_freeze_count() > 0
    gc.unfreeze()
