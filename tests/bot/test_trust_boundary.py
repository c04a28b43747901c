"""The webhook's trust boundary: what a holder of one signed URL, or a hostile client, can and cannot do."""

import asyncio
import logging
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot import webhook
from bot.devtools.simulator import ACCOUNT_ID, WeChatSimulator, push_xml
from bot.wechat import sign
from handlers.replies import cdata
from models import BroadcastDraft, Follower
from tests.conftest import TOKEN, rows_written

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ADMIN = "o-admin"


def signed(timestamp: str | None = None, nonce: str = "12345") -> dict[str, str]:
    stamp = timestamp if timestamp is not None else str(int(time.time()))
    return {"signature": sign(TOKEN, stamp, nonce), "timestamp": stamp, "nonce": nonce}


def envelope(inner: str, create_time: str | None = None) -> str:
    """A push with the envelope's fields and ``inner`` as the rest, written out by hand."""
    stamp = create_time if create_time is not None else str(int(time.time()))
    return (f"<xml><ToUserName>{cdata(ACCOUNT_ID)}</ToUserName><CreateTime>{stamp}</CreateTime>{inner}</xml>")


# -- one signed URL, another body ---------------------------------------------------------------------

def test_a_signed_pair_with_another_body_is_refused_and_the_same_body_is_a_retry(app, client):
    params, body = signed(nonce="777"), push_xml("o-a", "text", {"Content": "报名", "MsgId": 1})
    first = client.post("/wechat", params=params, content=body)
    assert first.status_code == 200 and "姓名" in first.text
    written = rows_written(app)
    forged = client.post("/wechat", params=params, content=push_xml("o-b", "text", {"Content": "报名", "MsgId": 2}))
    assert forged.status_code == 403
    assert rows_written(app) == written
    retry = client.post("/wechat", params=params, content=body)
    assert retry.status_code == 200 and retry.text == first.text


def test_a_binding_is_shared_by_every_process(make_app, settings):
    """Two apps on the same database (and Redis): the second refuses what the first bound."""
    params = signed(nonce="778")
    first, second = make_app(settings), make_app(settings)
    with TestClient(first) as one, TestClient(second) as other:
        assert one.post("/wechat", params=params, content=push_xml("o-a", "text", {"Content": "议程", "MsgId": 3})).status_code == 200
        forged = other.post("/wechat", params=params, content=push_xml("o-b", "text", {"Content": "议程", "MsgId": 4}))
    assert forged.status_code == 403


def test_plaintext_admin_commands_that_change_anything_are_refused_under_a_key(make_settings, make_app):
    settings = make_settings(
        wechat_encoding_aes_key=AES_KEY, wechat_app_id="wx0123456789abcdef", wechat_accept_plaintext=True,
        admin_openids_raw=ADMIN,
    )
    app = make_app(settings)
    with TestClient(app) as client:
        chat = WeChatSimulator(client, TOKEN)
        refused = chat.send_text(ADMIN, "广播 明天见")
        answer_refused = chat.send_text(ADMIN, "回答 #1 下午两点开始")
        stats = chat.send_text(ADMIN, "统计")
    assert "明文" in refused.content and "明文" in answer_refused.content
    assert "明文" not in stats.content
    with app.state.services.sessions() as session:
        assert session.scalars(select(BroadcastDraft)).all() == []


# -- malformed but signed ---------------------------------------------------------------------------

MALFORMED = {
    "two-senders": envelope("<FromUserName>o-a</FromUserName><FromUserName>o-b</FromUserName><MsgType>text</MsgType><Content>议程</Content><MsgId>5</MsgId>"),
    "nested-content": envelope("<FromUserName>o-a</FromUserName><MsgType>text</MsgType><Content><b>议程</b></Content><MsgId>5</MsgId>"),
    "msgid-abc": envelope("<FromUserName>o-a</FromUserName><MsgType>text</MsgType><Content>议程</Content><MsgId>abc</MsgId>"),
    "msgid-5000-digits": envelope("<FromUserName>o-a</FromUserName><MsgType>text</MsgType><Content>议程</Content><MsgId>" + "9" * 5000 + "</MsgId>"),
    "event-createtime-text": envelope("<FromUserName>o-a</FromUserName><MsgType>event</MsgType><Event>subscribe</Event>", create_time="soon"),
    "empty-sender": envelope("<FromUserName></FromUserName><MsgType>text</MsgType><Content>报名</Content><MsgId>5</MsgId>"),
    "sender-with-markup-characters": envelope("<FromUserName>o&lt;a&gt;</FromUserName><MsgType>text</MsgType><Content>报名</Content><MsgId>5</MsgId>"),
    "sender-too-long": envelope(f"<FromUserName>{'o' * 65}</FromUserName><MsgType>text</MsgType><Content>报名</Content><MsgId>5</MsgId>"),
    "latitude-not-a-number": envelope("<FromUserName>o-a</FromUserName><MsgType>event</MsgType><Event>LOCATION</Event><Latitude>north</Latitude>"),
    "no-account-id": "<xml><FromUserName>o-a</FromUserName><CreateTime>1</CreateTime><MsgType>image</MsgType></xml>",
    "too-deep": envelope("<FromUserName>o-a</FromUserName><MsgType>text</MsgType><Content>x</Content><A><B><C><D><E>1</E></D></C></B></A>"),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_every_malformed_signed_body_is_a_400_that_leaves_nothing_behind(app, body):
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/wechat", params=signed(), content=body.encode())
    assert response.status_code == 400
    assert rows_written(app) == 0


@pytest.mark.parametrize(
    "timestamp", ["9" * 400, "+" + str(int(time.time())), "1_" + str(int(time.time()))[2:],
                  str(int(time.time())).translate(str.maketrans("0123456789", "０１２３４５６７８９"))],
    ids=["400-digits", "plus-sign", "underscore", "full-width"],
)
def test_timestamps_are_plain_ascii_digits_on_post_and_get(app, client, timestamp):
    params = signed(timestamp=timestamp)
    assert client.post("/wechat", params=params, content=push_xml("o-a", "text", {"Content": "议程", "MsgId": 6})).status_code == 403
    assert client.get("/wechat", params=params | {"echostr": "x"}).status_code == 403
    assert rows_written(app) == 0


def test_server_verification_has_the_same_freshness_window(client):
    assert client.get("/wechat", params=signed(timestamp=str(int(time.time()) - 301)) | {"echostr": "x"}).status_code == 403


def test_texts_without_msgid_are_told_apart_by_time_and_content(wechat):
    now = int(time.time())
    first = wechat.post(push_xml("o-a", "text", {"Content": "议程"}, create_time=now))
    second = wechat.post(push_xml("o-a", "text", {"Content": "报名"}, create_time=now + 1))
    third = wechat.post(push_xml("o-a", "text", {"Content": "取消"}, create_time=now + 2))
    assert "李玉光" in first.content
    assert "姓名" in second.content
    assert third.content != second.content


# -- the body, read only after the query is checked, within a time ----------------------------------

async def call_asgi(app, query: str, receive) -> tuple[int, bytes]:
    """One raw ASGI request: the status and body the app sends."""
    sent: dict = {"body": b""}

    async def send(message) -> None:
        if message["type"] == "http.response.start":
            sent["status"] = message["status"]
        elif message["type"] == "http.response.body":
            sent["body"] += message.get("body", b"")

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/wechat", "raw_path": b"/wechat", "root_path": "", "query_string": query.encode(),
        "headers": [(b"content-type", b"text/xml")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    return sent["status"], sent["body"]


def query_of(params: dict[str, str]) -> str:
    return "&".join(f"{name}={value}" for name, value in params.items())


def test_an_unsigned_push_is_refused_before_its_body_is_read(app):
    reads = []

    async def receive():
        reads.append(1)
        return {"type": "http.request", "body": b"<xml/>", "more_body": False}

    status, _ = asyncio.run(call_asgi(app, "signature=0&timestamp=1&nonce=1", receive))
    assert status == 403 and reads == []


def test_a_body_that_never_arrives_is_a_408(app, monkeypatch):
    monkeypatch.setattr(webhook, "BODY_READ_TIMEOUT_SECONDS", 0.05)

    async def receive():
        await asyncio.Event().wait()  # a client that sends headers, then nothing

    status, _ = asyncio.run(call_asgi(app, query_of(signed()), receive))
    assert status == 408
    assert rows_written(app) == 0


def test_a_client_that_leaves_mid_body_is_one_warning_without_traceback(app, caplog):
    parts = iter([{"type": "http.request", "body": b"<xml><FromUser", "more_body": True}, {"type": "http.disconnect"}])

    async def receive():
        return next(parts)

    with caplog.at_level(logging.WARNING):
        asyncio.run(call_asgi(app, query_of(signed()), receive))
    records = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(records) == 1 and records[0].levelno == logging.WARNING and records[0].exc_info is None
    assert rows_written(app) == 0


# -- following again -------------------------------------------------------------------------------

@pytest.mark.parametrize("event_key", ["", "qrscene_poster", "scanbarcode|6901234567892", "scanimage|abc"])
def test_following_again_by_any_subscribe_marks_the_follower_subscribed(app, wechat, event_key):
    now = int(time.time())
    wechat.post(push_xml("o-back", "event", {"Event": "subscribe"}, create_time=now - 60))
    wechat.post(push_xml("o-back", "event", {"Event": "unsubscribe"}, create_time=now - 30))
    assert not subscribed(app, "o-back")
    fields = {"Event": "subscribe"} | ({"EventKey": event_key} if event_key else {})
    assert wechat.post(push_xml("o-back", "event", fields, create_time=now)).status == 200
    assert subscribed(app, "o-back")


def test_any_message_marks_the_follower_subscribed_again(app, wechat):
    wechat.send_event("o-back", "subscribe")
    wechat.send_event("o-back", "unsubscribe")
    wechat.send_text("o-back", "议程")
    assert subscribed(app, "o-back")


def subscribed(app, openid: str) -> bool:
    app.state.services.activity.flush()
    with app.state.services.sessions() as session:
        return session.scalar(select(Follower.subscribed).where(Follower.openid == openid))
