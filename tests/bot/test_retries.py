"""WeChat's retries: the same message is answered once; a slow handler answers later, never twice.

The handlers made up here ask for ``session``: they stand for handlers with effects, which take the
database path (one transaction with the ledger, under the reply budget). Questions answered from content
alone take no ledger entry: answering a retry of one again changes nothing.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bot.devtools.simulator import WeChatSimulator, push_xml
from handlers.dispatch import Router
from handlers.matching import has_text
from handlers.replies import Text
from models import InboundMessage
from tests.conftest import TOKEN
from tests.polling import wait_until


def ledger_rows(app) -> int:
    with app.state.services.sessions() as session:
        return session.scalar(select(func.count()).select_from(InboundMessage))


def test_a_retry_gets_the_same_reply_and_is_handled_once(app, wechat):
    xml = wechat.text_xml("o-retry", "报名", msg_id=9001)
    first, second, third = wechat.post(xml), wechat.post(xml), wechat.post(xml)
    assert "姓名" in first.content
    # Byte for byte, CreateTime included: the retries got the stored reply, not a second rendering.
    assert first.body == second.body == third.body
    if not app.state.services.settings.redis_url:
        assert ledger_rows(app) == 1


def test_a_retried_question_is_answered_again_from_content_without_a_ledger_entry(app, wechat):
    xml = wechat.text_xml("o-asks", "议程", msg_id=9006)
    first, second = wechat.post(xml), wechat.post(xml)
    assert "议程" in first.content and first.content == second.content
    assert ledger_rows(app) == 0


def test_the_same_msgid_from_another_follower_is_a_different_message(wechat):
    first = wechat.post(wechat.text_xml("o-a", "议程", msg_id=1))
    other = wechat.post(wechat.text_xml("o-b", "地点", msg_id=1))
    assert "3F-18" in other.content and "3F-18" not in first.content


def test_event_retries_are_keyed_on_create_time_event_and_key(wechat):
    click = push_xml("o-clicker", "event", {"Event": "CLICK", "EventKey": "VENUE"}, create_time=1700000000)
    assert wechat.post(click).content == wechat.post(click).content
    later = push_xml("o-clicker", "event", {"Event": "CLICK", "EventKey": "TIME"}, create_time=1700000000)
    assert "14:00–17:00" in wechat.post(later).content


class RecordingSink:
    """A late-reply sink that records what it was given, as the outbound layer would send it."""

    def __init__(self) -> None:
        self.delivered = []
        self.arrived = threading.Event()

    def deliver(self, response) -> None:
        self.delivered.append(response)
        self.arrived.set()


def slow_router(delay: float) -> Router:
    router = Router("slow")

    @router.handler(has_text)
    def answer_slowly(raw_text: str, session) -> Text:
        time.sleep(delay)  # the slow handler is what is tested: it overruns the reply budget
        return Text(f"慢回答：{raw_text}")

    return router


def test_a_retry_while_the_first_is_in_progress_gets_success_and_runs_nothing_twice(make_settings, make_app):
    started, calls = threading.Event(), []
    router = Router("slow")

    @router.handler(has_text)
    def answer_slowly(raw_text: str, session) -> Text:
        calls.append(raw_text)
        started.set()
        time.sleep(1.0)  # still being handled when the retry comes: the slowness is what is tested
        return Text("慢回答")

    app = make_app(make_settings(reply_budget_seconds=0.3), routers=[router])
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        xml = wechat.text_xml("o-busy", "你好", msg_id=9002)
        push = wechat.sign_push(xml)
        first = threading.Thread(target=wechat.post_signed, args=push)
        first.start()
        assert started.wait(5)
        assert wechat.post_signed(*push).is_success  # WeChat's retry while the first is still being handled
        first.join()
        assert first_real_reply(wechat, xml).content == "慢回答"
    assert calls == ["你好"]


def first_real_reply(wechat, xml: str):
    """WeChat's later retries: ``success`` until the first delivery's handler is done, then its reply."""

    def real_reply():
        reply = wechat.post(xml)
        return None if reply.is_success else reply

    return wait_until(real_reply, timeout=10, what="a reply other than success")


def test_concurrent_duplicates_run_the_handler_once_with_the_database_ledger(make_settings, make_app):
    """Without Redis the ledger is a row claimed in the message's own transaction, on either database."""
    calls = []
    router = Router("counting")

    @router.handler(has_text)
    def count(raw_text: str, session) -> Text:
        calls.append(raw_text)
        time.sleep(0.05)  # holds the message while its duplicates arrive: the overlap is what is tested
        return Text("一次")

    app = make_app(make_settings(redis_url=""), routers=[router])
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        xml = wechat.text_xml("o-dup", "你好", msg_id=9005)
        with ThreadPoolExecutor(max_workers=8) as pool:
            replies = list(pool.map(lambda _: wechat.post(xml), range(8)))
        assert {reply.content for reply in replies if not reply.is_success} == {"一次"}
        assert first_real_reply(wechat, xml).content == "一次"
    assert calls == ["你好"]


def test_an_overrunning_handler_answers_success_then_follows_up(make_settings, make_app):
    sink = RecordingSink()
    app = make_app(make_settings(reply_budget_seconds=0.2), late_replies=sink, routers=[slow_router(0.6)])
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        xml = wechat.text_xml("o-slow", "你好", msg_id=9003)
        assert wechat.post(xml).is_success
        assert sink.arrived.wait(5)
        assert sink.delivered[0].reply == Text("慢回答：你好")
        assert sink.delivered[0].openid == "o-slow"
        # WeChat's retry, arriving after the handler finished, gets the real answer.
        assert wechat.post(xml).content == "慢回答：你好"


def test_a_failing_handler_apologises_and_lets_the_retry_run_again(make_settings, make_app):
    calls = []
    router = Router("flaky")

    @router.handler(has_text)
    def fail_once(raw_text: str, session) -> Text:
        calls.append(raw_text)
        if len(calls) == 1:
            raise RuntimeError("database hiccup")
        return Text("好了")

    app = make_app(make_settings(), routers=[router])
    with TestClient(app) as client:
        wechat = WeChatSimulator(client, TOKEN)
        xml = wechat.text_xml("o-flaky", "你好", msg_id=9004)
        assert "系统开小差" in wechat.post(xml).content
        assert wechat.post(xml).content == "好了"
        assert len(calls) == 2
