"""Property-based fuzzing of ``POST /wechat``: whatever a signed request carries, never a 5xx, and a 4xx
leaves nothing behind. A few hundred examples per property in the normal suite; ``HYPOTHESIS_PROFILE=long``
runs thousands (README, "Tests")."""

from __future__ import annotations

import base64
import itertools
import time
from xml.sax.saxutils import escape

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from bot.devtools.simulator import encrypted_push, push_xml
from bot.wechat import SafeModeCrypto, parse_xml_safely, sign
from handlers.replies import cdata
from tests.conftest import TOKEN, rows_written

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx0123456789abcdef"
NONCES = itertools.count(1)

# Field names WeChat uses (typed and untyped, envelope and payload), and a few it does not.
FIELD_NAMES = st.sampled_from([
    "ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "MsgID", "Event", "EventKey",
    "Latitude", "Longitude", "Precision", "Recognition", "MediaId", "PicUrl", "Location_X", "Scale", "Ticket",
    "Status", "TotalCount", "ScanCodeInfo", "SendPicsInfo", "item", "Encrypt", "X", "msgtype",
])
MSG_TYPES = st.sampled_from(["text", "event", "image", "voice", "location", "link", "video", "unknown", ""])
EVENTS = st.sampled_from(["subscribe", "unsubscribe", "SCAN", "CLICK", "VIEW", "LOCATION", "TEMPLATESENDJOBFINISH",
                          "scancode_push", "pic_sysphoto", "subscribe_msg_popup_event", "", "bogus"])
WORDS = st.sampled_from(["议程", "报名", "确认", "取消", "时间", "地点", "广播 你好", "确认广播", "签到 ABC234", "1"])
SCALARS = st.one_of(
    WORDS, MSG_TYPES, EVENTS,
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.text(max_size=40),
    st.text(alphabet="0123456789", min_size=0, max_size=600),
    st.sampled_from(["o-fuzz", "", " ", "o" * 64, "o" * 65, "qrscene_42", "scanbarcode|1", "abc", "1.5", "NaN", "+1",
                     "１２３", "1_000", "checkin:meetup-10"]),
)


def element(name: str, value) -> str:
    if isinstance(value, list):
        return f"<{name}>{''.join(element(child, grandchild) for child, grandchild in value)}</{name}>"
    return f"<{name}>{escape(value)}</{name}>"


VALUES = st.recursive(SCALARS, lambda inner: st.lists(st.tuples(FIELD_NAMES, inner), max_size=4), max_leaves=12)
PLAUSIBLE_ENVELOPE = st.fixed_dictionaries({
    "FromUserName": st.one_of(st.just("o-fuzz"), SCALARS),
    "CreateTime": st.one_of(st.just(str(int(time.time()))), SCALARS),
    "MsgType": st.one_of(MSG_TYPES, SCALARS),
})


@st.composite
def pushes(draw) -> str:
    """A push-like XML tree: mostly WeChat's envelope, then random fields, types, sizes, nesting, repeats."""
    fields = [(name, value) for name, value in draw(PLAUSIBLE_ENVELOPE).items() if draw(st.integers(0, 9))]
    fields += draw(st.lists(st.tuples(FIELD_NAMES, VALUES), max_size=8))
    if draw(st.booleans()):
        fields = draw(st.permutations(fields))
    return "<xml>" + "".join(element(name, value) for name, value in fields) + "</xml>"


def signed_query(timestamp: str | None = None) -> dict[str, str]:
    stamp = timestamp or str(int(time.time()))
    nonce = str(next(NONCES))
    return {"signature": sign(TOKEN, stamp, nonce), "timestamp": stamp, "nonce": nonce}


def assert_refusals_leave_nothing(app, client, query: dict[str, str], body: bytes) -> None:
    before = rows_written(app)
    response = client.post("/wechat", params=query, content=body)
    assert response.status_code < 500, response.text
    if 400 <= response.status_code < 500:
        assert rows_written(app) == before


@pytest.fixture
def fuzz_client(app):
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@given(body=pushes())
def test_random_signed_xml_trees_never_fail_the_server(app, fuzz_client, body):
    assert_refusals_leave_nothing(app, fuzz_client, signed_query(), body.encode())


@given(body=st.one_of(st.binary(max_size=2048), st.text(max_size=2048).map(str.encode)),
       timestamp=st.one_of(st.none(), st.text(max_size=30)))
def test_random_bytes_and_query_values_never_fail_the_server(app, fuzz_client, body, timestamp):
    assert_refusals_leave_nothing(app, fuzz_client, signed_query(timestamp), body)


@pytest.fixture
def aes_app(make_settings, make_app):
    return make_app(make_settings(wechat_encoding_aes_key=AES_KEY, wechat_app_id=APP_ID, admin_openids_raw="o-admin"))


@pytest.fixture
def aes_client(aes_app):
    with TestClient(aes_app, raise_server_exceptions=False) as client:
        yield client


@given(words=WORDS, openid=st.sampled_from(["o-fuzz", "o-admin"]),
       tamper=st.sampled_from(["none", "flip", "truncate", "base64-junk", "signature", "wrap", "drop-encrypt"]),
       position=st.integers(min_value=0, max_value=10_000), junk=st.binary(min_size=1, max_size=64))
def test_tampered_encrypted_pushes_never_fail_the_server(aes_app, aes_client, words, openid, tamper, position, junk):
    crypto = SafeModeCrypto(TOKEN, AES_KEY, APP_ID)
    body, query = encrypted_push(crypto, push_xml(openid, "text", {"Content": words, "MsgId": position}), signed_query())
    encrypted = parse_xml_safely(body).findtext("Encrypt")
    if tamper == "flip":
        raw = bytearray(base64.b64decode(encrypted))
        raw[position % len(raw)] ^= 1 << (position % 8)
        encrypted = base64.b64encode(bytes(raw)).decode()
    elif tamper == "truncate":
        encrypted = encrypted[: position % len(encrypted)]
    elif tamper == "base64-junk":
        encrypted = base64.b64encode(junk).decode()
    if tamper in ("flip", "truncate", "base64-junk"):
        # Signed again: the tampering must be caught by decryption, not only by the signature.
        query["msg_signature"] = sign(TOKEN, query["timestamp"], query["nonce"], encrypted)
        body = f"<xml><Encrypt>{cdata(encrypted)}</Encrypt></xml>"
    elif tamper == "signature":
        query["msg_signature"] = junk.hex()[:40]
    elif tamper == "wrap":
        body = f"<xml><Encrypt>{cdata(encrypted)}</Encrypt><Encrypt>{cdata(encrypted)}</Encrypt></xml>"
    elif tamper == "drop-encrypt":
        body = "<xml><ToUserName>gh</ToUserName></xml>"
    assert_refusals_leave_nothing(aes_app, aes_client, query, body.encode())
