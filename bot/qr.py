"""Permanent parametric QR codes to print: the event's check-in code and one per channel in ``[qr]``.

WeChat makes the code (``qrcode/create``, ``QR_LIMIT_STR_SCENE``: a permanent code for a scene string)
and answers with the URL it encodes; segno draws that URL as a PNG locally, so nothing but the API call
leaves the machine. An account may hold at most 100,000 permanent codes, so each scene is asked for once
and kept in the database (``models.qr_tickets``) for every process and restart.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import segno
from sqlalchemy.orm import Session, sessionmaker
from wechatpy.client.api import WeChatQRCode

from handlers.matching import CHECKIN_SCENE_PREFIX
from models.qr_tickets import permanent_ticket

# Modules per side of the PNG and the quiet zone around it: about 4 cm at 300 dpi for a ticket URL.
PNG_SCALE = 10
PNG_BORDER = 4


@dataclass(frozen=True)
class QrCode:
    scene: str
    # What the code encodes (WeChat's short URL), and the page where WeChat shows its own image of it.
    url: str
    ticket_url: str


def checkin_scene(event_id: str) -> str:
    return f"{CHECKIN_SCENE_PREFIX}{event_id}"


def permanent_qr(client, sessions: sessionmaker[Session], scene: str) -> QrCode:
    """The account's permanent code for ``scene``: the kept one, else made by WeChat now and kept."""

    def create() -> tuple[str, str]:
        answer = client.qrcode.create(
            {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": scene}}}
        )
        return answer["ticket"], answer["url"]

    kept = permanent_ticket(sessions, client.appid, scene, create)
    return QrCode(scene, kept.url, WeChatQRCode.get_url(kept.ticket))


def qr_png(url: str) -> bytes:
    """``url`` as a QR code PNG (error correction M, black on white)."""
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="png", scale=PNG_SCALE, border=PNG_BORDER)
    return buffer.getvalue()
