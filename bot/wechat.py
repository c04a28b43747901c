"""The inbound WeChat adapter: verify, decrypt and parse what WeChat POSTs, and encrypt what goes back.

wechatpy does the cipher, the padding and the message classes. Done here on top of it: signatures are
compared with ``hmac.compare_digest`` (wechatpy uses ``!=``, which leaks timing); XML is parsed here with
any DTD refused (wechatpy's parser would accept one), once; and the signature and the encrypted reply are
assembled here, cheaper than wechatpy's own (see ``sign`` and ``SafeModeCrypto.encrypt``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import struct
import threading
import time
from xml.etree.ElementTree import ParseError, TreeBuilder, XMLParser

from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.crypto.pkcs7 import PKCS7Encoder
from wechatpy.events import EVENT_TYPES
from wechatpy.exceptions import InvalidAppIdException
from wechatpy.fields import BaseField, DateTimeField, FloatField, IntegerField
from wechatpy.messages import MESSAGE_TYPES, UnknownMessage

from handlers.replies import cdata

MAX_BODY_BYTES = 64 * 1024
MAX_CLOCK_SKEW_SECONDS = 300
# The query's timestamp: ASCII digits only (int() would also take "+1", "1_0" and full-width digits).
TIMESTAMP = re.compile(r"[0-9]{1,12}")
# WeChat's nonces are short digit strings; anything else is no push of WeChat's.
NONCE = re.compile(r"[0-9A-Za-z]{1,64}")
# An openid, or the account's own id (gh_…): 28 and 15 characters of these in practice.
OPENID = re.compile(r"[0-9A-Za-z_-]{1,64}")
# A push's deepest element: <xml><SendPicsInfo><PicList><item><PicMd5Sum>.
MAX_XML_DEPTH = 5
# Typed fields as wechatpy converts them on access: checked here so that access cannot raise later.
MSG_ID = re.compile(r"[0-9]{1,20}")
INTEGER = re.compile(r"-?[0-9]{1,20}")
DECIMAL = re.compile(r"-?[0-9]{1,12}(\.[0-9]{1,20})?")
UNIX_TIME = re.compile(r"[0-9]{1,12}")
# Fields every push carries, and fields read before wechatpy's class is chosen: text, one element each.
ENVELOPE_FIELDS = ("ToUserName", "FromUserName", "CreateTime", "MsgType")
TEXT_FIELDS = ("Event", "EventKey", "Content", "Recognition")


class WebhookRejected(Exception):
    """A request that is not a valid WeChat push. ``status`` is the HTTP status to answer with."""

    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadSignature(WebhookRejected):
    status = 403


class StaleTimestamp(WebhookRejected):
    status = 403


class BodyTooLarge(WebhookRejected):
    status = 413


class MalformedMessage(WebhookRejected):
    status = 400


def sign(*parts: str) -> str:
    """WeChat's signature: SHA-1 over the sorted parts.

    wechatpy's ``WeChatSigner`` in one line: it converted and sorted each part as bytes, and a safe-mode
    request needs three signatures. Sorting the strings gives the same order, since UTF-8 preserves the
    order of code points; ``tests/test_crypto.py`` checks it against WeChatSigner and WeChat's sample.
    """
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def check_signature(expected_parts: tuple[str, ...], signature: str | None) -> None:
    """Raise BadSignature unless ``signature`` signs ``expected_parts`` (constant-time compare)."""
    if not signature or not hmac.compare_digest(sign(*expected_parts).encode(), signature.encode()):
        raise BadSignature("invalid signature")


def check_fresh(timestamp: str | None, *, now: float | None = None) -> None:
    """Raise StaleTimestamp when ``timestamp`` is missing, not plain ASCII digits, or more than 300 s from
    the real clock."""
    if timestamp is None or not TIMESTAMP.fullmatch(timestamp):
        raise StaleTimestamp("missing or invalid timestamp")
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
        raise StaleTimestamp("timestamp too far from now")


def check_nonce(nonce: str | None) -> None:
    """Raise MalformedMessage unless ``nonce`` looks like WeChat's (it is echoed in encrypted replies)."""
    if nonce is None or not NONCE.fullmatch(nonce):
        raise MalformedMessage("missing or invalid nonce")


class _DtdRefused(Exception):
    pass


class _TreeBuilderRefusingDtd(TreeBuilder):
    """ElementTree's C tree builder, refusing any document type declaration the moment expat meets it.

    Hand-written rather than defusedxml: defusedxml screens with the pure-Python XMLParser, whose
    callbacks made parsing the costliest step of answering a question (bench/RESULTS.md, item 11). The
    guarantee is the one of defusedxml's ``forbid_dtd``, at the same point: every entity, internal or
    external, and every external DTD needs a DOCTYPE, and expat announces the DOCTYPE before anything in
    it takes effect. An entity that was never declared is a parse error anyway.
    """

    def doctype(self, name, pubid, system):
        raise _DtdRefused(name)


def parse_xml_safely(body: bytes | str):
    """Parse with DTDs and entities forbidden; raise MalformedMessage on anything else than plain XML."""
    parser = XMLParser(target=_TreeBuilderRefusingDtd())
    try:
        parser.feed(body)
        return parser.close()
    except _DtdRefused:
        raise MalformedMessage("DTDs and entities are not accepted") from None
    except ParseError:
        raise MalformedMessage("malformed XML") from None


def parse_push(xml: bytes | str):
    """The wechatpy message for a plaintext push, after screening its XML and checking its shape: every
    field it can be asked for is there once, as text, and converts to its type (see ``check_shape``)."""
    root = parse_xml_safely(xml)
    if root.tag != "xml" or root.findtext("MsgType") is None or root.findtext("FromUserName") is None:
        raise MalformedMessage("not a WeChat message: <xml> with MsgType and FromUserName expected")
    check_shape(root)
    message = message_from_fields(_element_value(root))
    check_typed_fields(message)
    return message


def check_shape(root) -> None:
    """Raise MalformedMessage unless the push has each top-level field once, the envelope and the fields
    read before typing as text, a plausible sender and creation time, and no deeper nesting than WeChat's."""
    tags = [child.tag for child in root]
    if len(tags) != len(set(tags)):
        raise MalformedMessage("a field appears more than once")
    # Most pushes are flat: their depth is only worked out when a field has children.
    if any(len(child) for child in root) and _depth(root) > MAX_XML_DEPTH:
        raise MalformedMessage("nested too deeply")
    for name in (*ENVELOPE_FIELDS, *TEXT_FIELDS, "MsgId", "MsgID"):
        element = root.find(name)
        if element is not None and len(element):
            raise MalformedMessage(f"{name} must be text")
    if not OPENID.fullmatch((root.findtext("FromUserName") or "").strip()):
        raise MalformedMessage("invalid FromUserName")
    if not OPENID.fullmatch((root.findtext("ToUserName") or "").strip()):  # the account's id: replies go from it
        raise MalformedMessage("invalid ToUserName")
    if not UNIX_TIME.fullmatch((root.findtext("CreateTime") or "").strip()):
        raise MalformedMessage("invalid CreateTime")
    msg_id = root.findtext("MsgId")
    if msg_id is not None and not MSG_ID.fullmatch(msg_id.strip()):
        raise MalformedMessage("invalid MsgId")


def _depth(element) -> int:
    return 1 + max((_depth(child) for child in element), default=0)


_TYPED_FIELD_PATTERNS = ((IntegerField, INTEGER), (FloatField, DECIMAL), (DateTimeField, UNIX_TIME))


def check_typed_fields(message) -> None:
    """Raise MalformedMessage when a field of the message's wechatpy class would fail on access: a
    number that is no number, or a scalar field given as nested elements."""
    for field in type(message)._fields.values():
        value = message._data.get(field.name)
        if value is None or type(field) is BaseField:  # BaseField: WeChat's own nested fields (ScanCodeInfo …)
            continue
        if isinstance(value, dict | list):
            raise MalformedMessage(f"{field.name} must be text")
        pattern = next((pattern for kind, pattern in _TYPED_FIELD_PATTERNS if isinstance(field, kind)), None)
        if pattern is not None and not pattern.fullmatch(value):
            raise MalformedMessage(f"{field.name} must be a number")


def message_from_fields(fields: dict):
    """The wechatpy message class for a push's fields, as ``wechatpy.parse_message`` chooses it.

    Why not ``parse_message`` itself: it takes XML and parses it again with xmltodict, which cost as much
    as the whole screened parse on every message. The choice below is parse_message's (wechatpy 1.8.18),
    on wechatpy's own tables; ``tests/test_samples.py`` checks both agree on every published push.
    """
    message_type = str(fields.get("MsgType") or "").lower()
    if message_type != "event" and not message_type.startswith("device_"):
        return MESSAGE_TYPES.get(message_type, UnknownMessage)(fields)
    event_type = str(fields["Event"]).lower() if fields.get("Event") else None
    if message_type.startswith("device_"):
        event_type = f"device_{event_type}" if event_type else message_type
    event_key = fields.get("EventKey")
    if event_type == "subscribe" and event_key:
        if event_key.startswith(("scanbarcode|", "scanimage|")):
            event_type = fields["Event"] = "subscribe_scan_product"
        elif event_key.startswith("qrscene_"):
            event_type = fields["Event"] = "subscribe_scan"
            fields["EventKey"] = event_key.removeprefix("qrscene_")
    return EVENT_TYPES.get(event_type, UnknownMessage)(fields)


def _element_value(element):
    """What xmltodict gives for an element: its text stripped (None when blank), or a dict of its children
    where a repeated child becomes a list. WeChat's pushes carry no attributes and no mixed content."""
    if len(element) == 0:
        return (element.text or "").strip() or None
    children: dict = {}
    for child in element:
        value = _element_value(child)
        if child.tag not in children:
            children[child.tag] = value
        elif isinstance(children[child.tag], list):
            children[child.tag].append(value)
        else:
            children[child.tag] = [children[child.tag], value]
    return children


# The reply envelope WeChat expects in safe mode (wechatpy's own, which it formats per reply).
_ENCRYPTED_REPLY = """<xml>
<Encrypt><![CDATA[{encrypt}]]></Encrypt>
<MsgSignature><![CDATA[{signature}]]></MsgSignature>
<TimeStamp>{timestamp}</TimeStamp>
<Nonce>{nonce}</Nonce>
</xml>"""


class SafeModeCrypto:
    """AES safe mode: ``msg_signature`` verified before anything is decrypted; replies encrypted."""

    def __init__(self, token: str, encoding_aes_key: str, app_id: str) -> None:
        self._token = token
        self._app_id = app_id
        self._app_id_bytes = app_id.encode()
        self._prp = PrpCrypto(WeChatCrypto(token, encoding_aes_key, app_id).key)
        # Random bytes for the replies' prefixes, drawn from the OS 4 KiB at a time: ``os.urandom`` is a
        # system call, and one per reply was among the costliest steps of an encryption on this machine.
        self._random_lock = threading.Lock()
        self._random_bytes = b""
        self._random_used = 0

    def decrypt(self, body: bytes, msg_signature: str | None, timestamp: str, nonce: str) -> str:
        """The plaintext XML inside an encrypted push."""
        encrypted = parse_xml_safely(body).findtext("Encrypt")
        if not encrypted:
            raise MalformedMessage("encrypted message without <Encrypt>")
        check_signature((self._token, timestamp, nonce, encrypted), msg_signature)
        try:
            return self._prp.decrypt(encrypted, self._app_id)
        except InvalidAppIdException:
            raise BadSignature("message encrypted for another AppID") from None
        except (ValueError, IndexError, struct.error):  # bad base64, block size, padding or length
            raise MalformedMessage("cannot decrypt message") from None

    def encrypt(self, reply_xml: str, nonce: str, timestamp: str) -> str:
        """The encrypted envelope for a reply, signed with ``msg_signature``.

        WeChat's layout (16 random bytes, the length in network order, the XML, the AppID; PKCS#7 to 32
        bytes) with wechatpy's cipher and padding, assembled here: wechatpy's ``encrypt_message`` built a
        new cipher for every reply and drew the 16 bytes with ``random.sample`` (hot spot 30 in
        bench/RESULTS.md). The 16 bytes stay printable, as WeChat's samples draw them.
        """
        xml = reply_xml.encode()
        block = self._random_prefix() + struct.pack(">I", len(xml)) + xml + self._app_id_bytes
        encrypted = base64.b64encode(self._prp.cipher.encrypt(PKCS7Encoder.encode(block))).decode()
        return _ENCRYPTED_REPLY.format(encrypt=encrypted, signature=sign(self._token, timestamp, nonce, encrypted),
                                       timestamp=timestamp, nonce=cdata(nonce))

    def _random_prefix(self) -> bytes:
        """16 printable random bytes (8 from the OS, in hex), never the same bytes twice."""
        with self._random_lock:
            if self._random_used + 8 > len(self._random_bytes):
                self._random_bytes, self._random_used = os.urandom(4096), 0
            start, self._random_used = self._random_used, self._random_used + 8
        return self._random_bytes[start:start + 8].hex().encode()
