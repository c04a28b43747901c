"""Permanent parametric QR codes to print: the event's check-in code and one per channel in ``[qr]``.

WeChat makes the code (``qrcode/create``, ``QR_LIMIT_STR_SCENE``: a permanent code for a scene string)
and answers with the URL it encodes; segno draws that URL as a PNG locally, so nothing but the API call
leaves the machine. An account may hold at most 100,000 permanent codes, so each process asks once per
scene and keeps the answer.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

import segno
from wechatpy.client.api import WeChatQRCode

from handlers.matching import CHECKIN_SCENE_PREFIX

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


class QrCodes:
    """Permanent codes by scene, asked of WeChat once per process."""

    def __init__(self) -> None:
        self._codes: dict[str, QrCode] = {}
        self._lock = threading.Lock()

    def get(self, client, scene: str) -> QrCode:
        with self._lock:
            if scene not in self._codes:
                answer = client.qrcode.create(
                    {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": scene}}}
                )
                self._codes[scene] = QrCode(scene, answer["url"], WeChatQRCode.get_url(answer["ticket"]))
            return self._codes[scene]


def qr_png(url: str) -> bytes:
    """``url`` as a QR code PNG (error correction M, black on white)."""
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="png", scale=PNG_SCALE, border=PNG_BORDER)
    return buffer.getvalue()
