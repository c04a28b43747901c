"""A stand-in for WeChat's servers: builds pushes, signs (and encrypts) them, posts them, reads replies.

Used by ``eventbot chat`` and by the tests, so both go through exactly the path WeChat uses.
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field

import httpx

from bot.wechat import SafeModeCrypto, parse_xml_safely, sign
from handlers.replies import cdata

ACCOUNT_ID = "gh_eventbot_sim"


@dataclass
class Reply:
    """A reply as a follower sees it."""

    status: int
    body: str
    msg_type: str = ""
    content: str = ""
    articles: list[dict[str, str]] = field(default_factory=list)
    media_id: str = ""

    @property
    def is_success(self) -> bool:
        return self.status == 200 and self.body == "success"


def push_xml(openid: str, msg_type: str, fields: dict[str, str | int], create_time: int | None = None) -> str:
    """A push as WeChat sends it: ``<xml>`` with the envelope fields and the type's own fields."""
    parts = [
        f"<ToUserName>{cdata(ACCOUNT_ID)}</ToUserName>",
        f"<FromUserName>{cdata(openid)}</FromUserName>",
        f"<CreateTime>{create_time or int(time.time())}</CreateTime>",
        f"<MsgType>{cdata(msg_type)}</MsgType>",
    ]
    for name, value in fields.items():
        parts.append(f"<{name}>{value}</{name}>" if isinstance(value, int) else f"<{name}>{cdata(value)}</{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


def encrypted_push(crypto: SafeModeCrypto, xml: str, params: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The safe-mode body WeChat posts for ``xml``, and the query with ``encrypt_type`` and ``msg_signature``."""
    envelope = parse_xml_safely(crypto.encrypt(xml, params["nonce"], params["timestamp"]))
    body = f"<xml><ToUserName>{cdata(ACCOUNT_ID)}</ToUserName><Encrypt>{cdata(envelope.findtext('Encrypt'))}</Encrypt></xml>"
    return body, params | {"encrypt_type": "aes", "msg_signature": envelope.findtext("MsgSignature")}


def parse_reply(status: int, body: str, crypto: SafeModeCrypto | None) -> Reply:
    if status != 200 or body == "success":
        return Reply(status, body)
    root = parse_xml_safely(body)
    if crypto is not None and root.findtext("Encrypt") is not None:
        plain = crypto.decrypt(
            body.encode(), root.findtext("MsgSignature"), root.findtext("TimeStamp"), root.findtext("Nonce")
        )
        root = parse_xml_safely(plain)
        body = plain
    articles = [
        {child.tag: child.text or "" for child in item} for item in root.iterfind("Articles/item")
    ]
    return Reply(
        status,
        body,
        msg_type=root.findtext("MsgType") or "",
        content=root.findtext("Content") or "",
        articles=articles,
        media_id=root.findtext("Image/MediaId") or "",
    )


class WeChatSimulator:
    """Posts signed pushes to an eventbot ``/wechat`` endpoint through ``client``."""

    def __init__(self, client: httpx.Client, token: str, *, crypto: SafeModeCrypto | None = None) -> None:
        self.client = client
        self.token = token
        self.crypto = crypto
        self._msg_ids = itertools.count(int(time.time() * 1000) % 10**12)

    def signed_params(self, timestamp: str | None = None, nonce: str | None = None) -> dict[str, str]:
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or secrets.token_hex(5)
        return {"signature": sign(self.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}

    def sign_push(self, xml: str) -> tuple[str, dict[str, str]]:
        """The body and signed query WeChat posts for ``xml`` (encrypted when the simulator has a crypto)."""
        params = self.signed_params()
        if self.crypto is not None:
            return encrypted_push(self.crypto, xml, params)
        return xml, params

    def post(self, xml: str) -> Reply:
        """Post one push as WeChat would."""
        return self.post_signed(*self.sign_push(xml))

    def post_signed(self, body: str, params: dict[str, str]) -> Reply:
        """Post a signed push as it is: posting the same one again is WeChat's retry of it."""
        response = self.client.post("/wechat", params=params, content=body.encode())
        return parse_reply(response.status_code, response.text, self.crypto)

    def next_msg_id(self) -> int:
        return next(self._msg_ids)

    def text_xml(self, openid: str, text: str, msg_id: int | None = None) -> str:
        return push_xml(openid, "text", {"Content": text, "MsgId": msg_id or self.next_msg_id()})

    def send_text(self, openid: str, text: str) -> Reply:
        return self.post(self.text_xml(openid, text))

    def send_event(self, openid: str, event: str, key: str = "", **extra: str) -> Reply:
        fields: dict[str, str | int] = {"Event": event}
        if key:
            fields["EventKey"] = key
        fields.update(extra)
        return self.post(push_xml(openid, "event", fields))


def describe(reply: Reply) -> str:
    """A reply as text for a terminal."""
    if reply.status != 200:
        return f"[HTTP {reply.status}] {reply.body}"
    if reply.is_success:
        return "[no reply: success]"
    if reply.msg_type == "news":
        return "\n".join(f"[图文] {a.get('Title', '')}\n{a.get('Description', '')}\n{a.get('Url', '')}" for a in reply.articles)
    if reply.msg_type == "image":
        return f"[图片 media_id={reply.media_id}]"
    return reply.content
