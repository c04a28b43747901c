"""Safe mode (AES): WeChat's official sample decrypts and verifies; encrypted replies round-trip."""

import json
import time

import pytest
from fastapi.testclient import TestClient

from bot.devtools.simulator import WeChatSimulator, encrypted_push, push_xml
from bot.wechat import (
    BadSignature,
    SafeModeCrypto,
    StaleTimestamp,
    check_fresh,
    parse_xml_safely,
    sign,
)
from handlers.replies import Article, News, Text, cdata, render_reply
from tests.conftest import FIXTURES, TOKEN, rows_written

VECTOR = json.loads((FIXTURES / "official-crypto-vector.json").read_text(encoding="utf-8"))
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx0123456789abcdef"


def official_envelope() -> bytes:
    return f"<xml><ToUserName>{cdata('gh_10f6c3c3ac5a')}</ToUserName><Encrypt>{cdata(VECTOR['encrypt'])}</Encrypt></xml>".encode()


def test_the_official_sample_decrypts_and_verifies():
    crypto = SafeModeCrypto(VECTOR["token"], VECTOR["encoding_aes_key"], VECTOR["app_id"])
    plain = crypto.decrypt(official_envelope(), VECTOR["msg_signature"], VECTOR["timestamp"], VECTOR["nonce"])
    assert plain == VECTOR["plaintext"]
    assert parse_xml_safely(plain).findtext("Content") == "abcdteT"


def test_the_official_sample_signatures_match():
    assert sign(VECTOR["token"], VECTOR["timestamp"], VECTOR["nonce"], VECTOR["encrypt"]) == VECTOR["msg_signature"]


@pytest.mark.parametrize("parts", [
    ("token", "1679810400", "nonce"), ("a", "ab", "b", "aa"), ("令牌", "1679810400", "随机", "Zebra"), ("", "x"),
])
def test_sign_agrees_with_wechatpys_signer(parts):
    from wechatpy.utils import WeChatSigner

    signer = WeChatSigner()
    signer.add_data(*parts)
    assert sign(*parts) == signer.signature


def test_the_official_sample_is_stale_by_the_real_clock():
    """Its timestamp is from 2014: freshness is the one check it cannot pass."""
    with pytest.raises(StaleTimestamp):
        check_fresh(VECTOR["timestamp"])


@pytest.mark.parametrize(
    ("token", "app_id", "signature"),
    [("wrong", VECTOR["app_id"], VECTOR["msg_signature"]), (VECTOR["token"], VECTOR["app_id"], "0" * 40),
     (VECTOR["token"], "wx-someone-else", VECTOR["msg_signature"])],
    ids=["wrong-token", "forged-msg-signature", "other-app-id"],
)
def test_the_official_sample_is_refused_with_the_wrong_secrets(token, app_id, signature):
    crypto = SafeModeCrypto(token, VECTOR["encoding_aes_key"], app_id)
    with pytest.raises(BadSignature):
        crypto.decrypt(official_envelope(), signature, VECTOR["timestamp"], VECTOR["nonce"])


@pytest.fixture
def aes_app(make_settings, make_app):
    return make_app(make_settings(wechat_encoding_aes_key=AES_KEY, wechat_app_id=APP_ID))


@pytest.fixture
def aes_wechat(aes_app):
    with TestClient(aes_app) as client:
        yield WeChatSimulator(client, TOKEN, crypto=SafeModeCrypto(TOKEN, AES_KEY, APP_ID))


@pytest.fixture
def app_rows(aes_app):
    return lambda: rows_written(aes_app)


def test_an_encrypted_message_gets_an_encrypted_reply(aes_wechat):
    # The simulator encrypts the push and verifies and decrypts the reply, as WeChat does.
    assert "李玉光" in aes_wechat.send_text("o-secure", "议程").content


def test_the_reply_envelope_is_encrypted_and_signed(aes_wechat):
    params = aes_wechat.signed_params()
    crypto = aes_wechat.crypto
    inner = push_xml("o-secure", "text", {"Content": "时间", "MsgId": 31})
    outer = parse_xml_safely(crypto.encrypt(inner, params["nonce"], params["timestamp"]))
    body = f"<xml><Encrypt>{cdata(outer.findtext('Encrypt'))}</Encrypt></xml>"
    response = aes_wechat.client.post(
        "/wechat", params=params | {"encrypt_type": "aes", "msg_signature": outer.findtext("MsgSignature")},
        content=body.encode(),
    )
    envelope = parse_xml_safely(response.text)
    assert "时间" not in response.text and envelope.findtext("Encrypt")
    assert sign(TOKEN, envelope.findtext("TimeStamp"), envelope.findtext("Nonce"), envelope.findtext("Encrypt")) == envelope.findtext("MsgSignature")
    assert "14:00–17:00" in crypto.decrypt(response.text.encode(), envelope.findtext("MsgSignature"), envelope.findtext("TimeStamp"), envelope.findtext("Nonce"))


def test_an_encrypted_reply_opens_with_wechatpy_and_differs_each_time():
    """The envelope is assembled here, not by wechatpy: wechatpy's own decryption is the independent check."""
    from wechatpy.crypto import WeChatCrypto

    crypto = SafeModeCrypto(TOKEN, AES_KEY, APP_ID)
    reply = render_reply(Text("议程：14:00 签到"), to_user="o-secure", from_user="gh_meetup", create_time=1679810400)
    first, second = (crypto.encrypt(reply, "nonce-1", "1679810400") for _ in range(2))
    opened = WeChatCrypto(TOKEN, AES_KEY, APP_ID).decrypt_message(
        first, parse_xml_safely(first).findtext("MsgSignature"), "1679810400", "nonce-1")
    assert opened == reply
    # The 16 leading bytes are random, so the same reply never encrypts the same way twice.
    assert parse_xml_safely(first).findtext("Encrypt") != parse_xml_safely(second).findtext("Encrypt")


def test_a_bad_msg_signature_is_refused_before_decrypting(aes_wechat):
    params = aes_wechat.signed_params()
    outer = parse_xml_safely(aes_wechat.crypto.encrypt(push_xml("o-x", "text", {"Content": "a", "MsgId": 1}), params["nonce"], params["timestamp"]))
    body = f"<xml><Encrypt>{cdata(outer.findtext('Encrypt'))}</Encrypt></xml>"
    response = aes_wechat.client.post("/wechat", params=params | {"encrypt_type": "aes", "msg_signature": "f" * 40}, content=body.encode())
    assert response.status_code == 403


def test_garbage_ciphertext_with_a_valid_signature_is_a_400(aes_wechat):
    params = aes_wechat.signed_params()
    garbage = "bm90IHJlYWxseSBlbmNyeXB0ZWQ="
    signature = sign(TOKEN, params["timestamp"], params["nonce"], garbage)
    response = aes_wechat.client.post(
        "/wechat", params=params | {"encrypt_type": "aes", "msg_signature": signature},
        content=f"<xml><Encrypt>{cdata(garbage)}</Encrypt></xml>".encode(),
    )
    assert response.status_code == 400


def test_a_plaintext_push_is_refused_once_a_key_is_set(aes_wechat, app_rows):
    """WeChat sends encrypt_type=aes in safe and compatible mode alike: plaintext would be a downgrade,
    its body covered by no signature."""
    response = aes_wechat.client.post("/wechat", params=aes_wechat.signed_params(), content=aes_wechat.text_xml("o-c", "报名").encode())
    assert response.status_code == 403
    assert app_rows() == 0


def test_plaintext_is_accepted_while_an_account_migrates(make_settings, make_app):
    settings = make_settings(wechat_encoding_aes_key=AES_KEY, wechat_app_id=APP_ID, wechat_accept_plaintext=True)
    with TestClient(make_app(settings)) as client:
        assert "3F-18" in WeChatSimulator(client, TOKEN).send_text("o-c", "地点").content


def test_a_nonce_that_could_break_the_reply_envelope_is_refused(aes_wechat):
    xml = aes_wechat.text_xml("o-n", "地点")
    params = aes_wechat.signed_params(nonce="n]]><Evil/>")
    body, params = encrypted_push(aes_wechat.crypto, xml, params)
    assert aes_wechat.client.post("/wechat", params=params, content=body.encode()).status_code == 400


def test_the_reply_envelope_escapes_its_nonce():
    crypto = SafeModeCrypto(TOKEN, AES_KEY, APP_ID)
    envelope = parse_xml_safely(crypto.encrypt("<xml/>", "n]]><Evil/>", "1679810400"))
    assert envelope.findtext("Nonce") == "n]]><Evil/>" and envelope.find("Evil") is None


def test_reply_text_containing_cdata_end_stays_well_formed():
    xml = render_reply(Text("a]]>b<c>&d"), to_user="o", from_user="gh", create_time=int(time.time()))
    assert parse_xml_safely(xml).findtext("Content") == "a]]>b<c>&d"


def test_news_replies_carry_exactly_one_article():
    with pytest.raises(ValueError):
        News((Article("a"), Article("b")))
    xml = render_reply(News((Article("标题]]>", "描述", "https://p", "https://u"),)), to_user="o", from_user="g", create_time=1)
    assert parse_xml_safely(xml).findtext("Articles/item/Title") == "标题]]>"
