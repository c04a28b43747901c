"""Every bad request gets a clear 4xx, never a 500, and leaves the database untouched."""

import time

import pytest
from fastapi.testclient import TestClient

from bot.devtools.simulator import push_xml
from bot.wechat import sign
from tests.conftest import TOKEN, rows_written

TEXT = push_xml("o-attacker", "text", {"Content": "议程", "MsgId": 42})


def database_is_untouched(app) -> bool:
    return rows_written(app) == 0


def params(timestamp: int | None = None, token: str = TOKEN, nonce: str = "n0nce") -> dict[str, str]:
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    return {"signature": sign(token, stamp, nonce), "timestamp": stamp, "nonce": nonce}


def test_server_verification_echoes_echostr(client):
    response = client.get("/wechat", params=params() | {"echostr": "hello-1234"})
    assert response.status_code == 200
    assert response.text == "hello-1234"


@pytest.mark.parametrize(
    "query",
    [
        {"echostr": "x"},
        params(token="wrong") | {"echostr": "x"},
        params(),
        {"signature": "", "timestamp": "1", "nonce": "2", "echostr": "x"},
    ],
    ids=["no-signature", "bad-signature", "no-echostr", "empty-signature"],
)
def test_server_verification_refuses_anything_else(client, query):
    assert client.get("/wechat", params=query).status_code == 403


@pytest.mark.parametrize(
    ("make_query", "body", "status"),
    [
        (lambda: params(token="wrong"), TEXT, 403),
        (lambda: {}, TEXT, 403),
        (lambda: params() | {"signature": "0" * 40}, TEXT, 403),
        (lambda: params(timestamp=int(time.time()) - 301), TEXT, 403),
        (lambda: params(timestamp=int(time.time()) + 400), TEXT, 403),
        (lambda: params() | {"timestamp": "not-a-number"}, TEXT, 403),
        (lambda: params(), "<xml><ToUserName>", 400),
        (lambda: params(), "not xml at all", 400),
        (lambda: params(), "", 400),
        (lambda: params(), "<xml><Foo>bar</Foo></xml>", 400),
        (lambda: params(), '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e "boom">]><xml><MsgType>text</MsgType><FromUserName>a</FromUserName><Content>&e;</Content></xml>', 400),
        (lambda: params(), '<!DOCTYPE xml SYSTEM "http://example.invalid/x.dtd"><xml><MsgType>text</MsgType></xml>', 400),
        (lambda: params(), '<!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><xml><MsgType>text</MsgType><FromUserName>a</FromUserName><Content>&b;</Content></xml>', 400),
        (lambda: params(), '<!DOCTYPE xml><xml><MsgType>text</MsgType><FromUserName>a</FromUserName></xml>', 400),
        (lambda: params(), '<xml><MsgType>text</MsgType><FromUserName>a</FromUserName><Content>&undeclared;</Content></xml>', 400),
        (lambda: params(), "<xml>" + "<Content>x</Content>" * 5000 + "</xml>", 413),
        (lambda: params() | {"encrypt_type": "aes", "msg_signature": "x"}, TEXT, 400),
    ],
    ids=[
        "wrong-token", "unsigned", "forged-signature", "stale-timestamp", "future-timestamp", "bad-timestamp",
        "truncated-xml", "not-xml", "empty-body", "not-a-wechat-message", "entity", "external-dtd",
        "entity-expansion", "bare-doctype", "undeclared-entity", "oversized",
        "aes-without-key",
    ],
)
def test_bad_pushes_are_refused_without_side_effects(app, client, make_query, body, status):
    # Queries are built when the test runs, so "stale" and "future" are measured from that moment.
    response = client.post("/wechat", params=make_query(), content=body.encode())
    assert response.status_code == status
    assert response.text  # a clear reason, not an empty body
    assert database_is_untouched(app)


def test_oversized_body_is_refused_by_declared_length_before_reading(app, client):
    response = client.post(
        "/wechat", params=params(), content=b"<xml/>", headers={"content-length": str(10 * 1024 * 1024)}
    )
    assert response.status_code == 413
    assert database_is_untouched(app)


def test_a_valid_push_does_touch_the_database(app, wechat):
    """The control case for the tests above: the check for side effects can fail."""
    assert wechat.send_text("o-follower", "报名").status == 200
    assert not database_is_untouched(app)


class FailingGate:
    """A push gate that fails as an unreachable store would, past every handler's own error handling."""

    async def check(self, push):
        raise RuntimeError("push gate unavailable")


def test_an_error_escaping_the_webhook_is_a_500_and_the_rest_of_the_app_still_routes(app):
    app.state.services.gate = FailingGate()
    stamp = str(int(time.time()))
    with TestClient(app, raise_server_exceptions=False) as client:
        failed = client.post("/wechat", params={"signature": sign(TOKEN, stamp, "n"), "timestamp": stamp, "nonce": "n"},
                             content=TEXT)
        echoed = client.get("/wechat", params=params() | {"echostr": "still-here"})
    assert failed.status_code == 500
    assert echoed.status_code == 200 and echoed.text == "still-here"
