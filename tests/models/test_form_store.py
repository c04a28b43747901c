"""Form progress: in Redis on the production path (no database statement for a form step), else in rows."""

from __future__ import annotations

import threading

import pytest
import redis
from sqlalchemy import event

from bot.devtools.simulator import push_xml
from bot.wechat import parse_push
from models.form_store import DatabaseForms, RedisForms
from tests.registration_steps import form_state, registration_of


def statements_of_handler_threads(app):
    """Record the SQL the app's handler threads run (not the activity recorder's flushes)."""
    statements: list[str] = []

    def record(_connection, _cursor, statement, *_rest) -> None:
        if threading.current_thread().name.startswith("handler"):
            statements.append(" ".join(statement.split())[:60])

    event.listen(app.state.services.engine, "before_cursor_execute", record)
    return statements


def test_the_store_follows_the_backend(app, settings):
    assert isinstance(app.state.services.forms, RedisForms if settings.redis_url else DatabaseForms)


def test_with_redis_only_the_deciding_step_reaches_the_database(app, wechat, settings):
    if not settings.redis_url:
        pytest.skip("form progress lives in the database without Redis")
    statements = statements_of_handler_threads(app)
    wechat.send_text("o-quick", "报名")
    opened = list(statements)
    assert any(statement.startswith("SELECT registrations") for statement in opened)  # 报名 looks it up
    for answer in ("张三", "13812345678", "火山引擎", "工程师", "现场"):
        wechat.send_text("o-quick", answer)
    assert statements == opened  # five steps, not one statement
    assert form_state(app, "o-quick").state == "confirm"
    wechat.send_text("o-quick", "确认")
    # The deciding insert goes by psycopg's pipeline, past SQLAlchemy's events: read what it committed.
    assert registration_of(app, "o-quick").status == "confirmed"
    assert form_state(app, "o-quick").state is None


def test_a_failed_message_keeps_nothing_and_frees_the_form(app, wechat):
    wechat.send_text("o-failing", "报名")
    forms, sessions = app.state.services.forms, app.state.services.sessions
    with pytest.raises(RuntimeError), sessions.begin() as session:
        forms.held(session, "o-failing").state = "phone"
        raise RuntimeError("the handler failed")
    assert form_state(app, "o-failing").state == "name"
    with sessions.begin() as session:  # not left held: the next message gets it at once
        forms.held(session, "o-failing").answers = {"name": "李四"}
    assert form_state(app, "o-failing").answers == {"name": "李四"}


def test_two_messages_of_one_follower_take_turns_on_the_form(app, wechat):
    wechat.send_text("o-twice", "报名")
    forms, sessions = app.state.services.forms, app.state.services.sessions
    first_holds, seen_by_second = threading.Event(), []

    def second_message() -> None:
        first_holds.wait()
        with sessions.begin() as session:
            seen_by_second.append(forms.held(session, "o-twice").state)

    second = threading.Thread(target=second_message)
    second.start()
    with sessions.begin() as session:
        forms.held(session, "o-twice").state = "phone"
        first_holds.set()
        second.join(timeout=0.5)
        assert second.is_alive()  # waiting for the form, not reading it under the first message
    second.join()
    assert seen_by_second == ["phone"]


def redis_round_trips(monkeypatch) -> list[int]:
    """Count what redis-py sends to Redis (one entry per round trip: a command, or a whole pipeline)."""
    sent: list[int] = []
    send = redis.connection.AbstractConnection.send_packed_command

    def counting(connection, command, *args, **kwargs):
        sent.append(1)
        return send(connection, command, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return sent


def test_with_redis_a_form_step_is_three_round_trips(app, wechat, settings, monkeypatch):
    if not settings.redis_url:
        pytest.skip("form progress lives in the database without Redis")
    wechat.send_text("o-trips", "报名")
    sent = redis_round_trips(monkeypatch)
    reply = wechat.send_text("o-trips", "张三")
    assert "手机" in reply.content
    # Is the follower in a form (the webhook, before choosing the path); the claim, which also holds the
    # form; the commit, which keeps the form and the reply and frees the form.
    assert len(sent) == 3


def test_a_message_whose_form_is_busy_at_its_claim_waits_for_it(app, wechat):
    wechat.send_text("o-busy", "报名")
    forms, sessions = app.state.services.forms, app.state.services.sessions
    replies = []
    second = threading.Thread(
        target=lambda: replies.append(app.state.services.responder.respond_with_database(parse_push(
            push_xml("o-busy", "text", {"Content": "张三", "MsgId": 4242})
        )))
    )
    with sessions.begin() as session:
        forms.held(session, "o-busy").answers = {"note": "kept by the first message"}
        second.start()
        second.join(timeout=0.5)
        assert second.is_alive()  # claimed, and waiting for the form
    second.join()
    assert "手机" in replies[0].reply.content  # the name step, on the form the first message kept
    assert form_state(app, "o-busy").answers == {"note": "kept by the first message", "name": "张三"}
