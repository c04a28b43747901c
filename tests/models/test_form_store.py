"""Form progress: always a ``form_states`` row (Redis only copies whether a form is open)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event

from bot.devtools.simulator import push_xml
from bot.wechat import parse_push
from models import FormState
from tests.registration_steps import form_state, start_form


def statements_of_handler_threads(app):
    """Record the SQL the app's handler threads run (not the activity recorder's flushes)."""
    statements: list[str] = []

    def record(_connection, _cursor, statement, *_rest) -> None:
        if threading.current_thread().name.startswith("handler"):
            statements.append(" ".join(statement.split())[:60])

    event.listen(app.state.services.engine, "before_cursor_execute", record)
    return statements


def test_forms_are_rows_whatever_the_backend(app, wechat):
    start_form(wechat, "o-row")
    wechat.send_text("o-row", "张三")
    with app.state.services.sessions() as session:
        row = session.get(FormState, "o-row")
    assert row.state == "phone" and row.answers["name"] == "张三"


def test_a_failed_message_keeps_nothing_and_frees_the_form(app, wechat):
    start_form(wechat, "o-failing")
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


def test_a_message_whose_form_is_busy_at_its_claim_waits_for_it(app, wechat):
    start_form(wechat, "o-busy")
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
