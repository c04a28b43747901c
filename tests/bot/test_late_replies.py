"""A reply that overran WeChat's budget reaches the follower as a customer-service text via the outbox."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.devtools.simulator import WeChatSimulator
from bot.late_replies import reply_as_text
from handlers.dispatch import Router
from handlers.replies import Article, Image, News, Text
from models.db import create_db_engine, session_factory
from models.outbox import SENT, Campaign, Delivery
from models.retention import prune_operational_state
from tests.conftest import FAKE_APP_ID, FAKE_APP_SECRET, TOKEN
from tests.polling import wait_until


def slow_router(release: threading.Event) -> Router:
    router = Router("slow")

    # Asks for the session: a handler with effects, which runs in a worker thread under the reply budget.
    @router.handler(lambda context: True)
    def handle_slowly(session) -> Text:
        release.wait(timeout=30)  # held until the webhook has already answered "success"
        return Text("慢慢想好的回答")

    return router


def test_a_late_reply_is_sent_by_the_apps_background_sender_and_its_text_then_forgotten(
    make_app, make_settings, fake_wechat, clock
):
    settings = make_settings(
        wechat_app_id=FAKE_APP_ID,
        wechat_app_secret=FAKE_APP_SECRET,
        wechat_api_base_url=fake_wechat.base_url,
        reply_budget_seconds=0.2,
    )
    release = threading.Event()
    app = make_app(settings, routers=[slow_router(release)], send_outbox=True)
    fake_wechat.tell_follower("o-alice", last_interaction_at=clock.now())

    with TestClient(app) as client:
        reply = WeChatSimulator(client, TOKEN).send_text("o-alice", "一个难问题")
        release.set()
        wait_until(fake_wechat.messages, timeout=30, what="the late reply at the fake WeChat")

    assert reply.is_success
    assert [(m["touser"], m["body"]["text"]["content"]) for m in fake_wechat.messages()] == [("o-alice", "慢慢想好的回答")]
    engine = create_db_engine(settings.database_url)
    sessions = session_factory(engine)
    with sessions() as session:
        campaign = session.scalars(select(Campaign)).one()
        delivery = session.scalars(select(Delivery)).one()
    assert (campaign.purpose, delivery.status, delivery.channel) == ("late_reply", SENT, "customer_service")
    # Like a stored reply, it may hold personal fields: once delivered, the retention job forgets its text.
    assert prune_operational_state(sessions, clock.now()).late_replies == 1
    with sessions() as session:
        assert session.execute(select(Campaign.text, Delivery.status).join(Delivery)).one() == ("", SENT)
    engine.dispose()


def test_without_credentials_the_app_keeps_late_replies_for_wechats_retry_only(app):
    assert type(app.state.services.late_replies).__name__ == "LedgerOnlySink"


def test_news_replies_become_a_text_with_the_link_and_images_have_no_text_form():
    news = News((Article("议程", "四场分享", url="https://example.org/agenda"),))

    assert reply_as_text(news) == "议程\n四场分享\nhttps://example.org/agenda"
    assert reply_as_text(Image("media-1")) is None
