"""订阅通知 popup events, posted as signed XML to the real app, are counted as acceptances."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models.outbox import SubscribeAcceptance


def popup(openid: str, create_time: int, *choices: tuple[str, str]) -> str:
    entries = "".join(
        f"<List><TemplateId><![CDATA[{template}]]></TemplateId>"
        f"<SubscribeStatusString><![CDATA[{status}]]></SubscribeStatusString><PopupScene>2</PopupScene></List>"
        for template, status in choices
    )
    return (
        f"<xml><ToUserName><![CDATA[gh_account]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[subscribe_msg_popup_event]]></Event><SubscribeMsgPopupEvent>{entries}</SubscribeMsgPopupEvent></xml>"
    )


@pytest.fixture
def acceptances(sessions):
    def read() -> dict[tuple[str, str], int]:
        with sessions() as session:
            return {(a.openid, a.template_id): a.remaining for a in session.scalars(select(SubscribeAcceptance))}

    return read


def test_each_accepted_template_allows_one_more_message_and_rejections_count_nothing(wechat, acceptances):
    assert wechat.post(popup("o-alice", 1679277600, ("TPL-A", "accept"), ("TPL-B", "reject"))).is_success
    assert wechat.post(popup("o-alice", 1679277700, ("TPL-A", "accept"))).is_success

    assert acceptances() == {("o-alice", "TPL-A"): 2}


def test_wechat_retrying_the_same_popup_event_counts_it_once(wechat, acceptances):
    event = popup("o-alice", 1679277600, ("TPL-A", "accept"))

    wechat.post(event)
    wechat.post(event)

    assert acceptances() == {("o-alice", "TPL-A"): 1}
