"""Permanent QR codes WeChat made for the account, one row per scene, shared by every process.

An account may hold at most 100,000 permanent codes and a code never expires, so each scene is asked of
WeChat once and its ticket kept here: every process, and every restart, prints the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import String, func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from models.base import AwareDateTime, Base


class QrTicket(Base):
    """WeChat's answer to ``qrcode/create`` for a scene: the ticket (its image link) and the URL it encodes."""

    __tablename__ = "qr_tickets"

    app_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # WeChat's scene_str: at most 64 characters.
    scene: Mapped[str] = mapped_column(String(64), primary_key=True)
    ticket: Mapped[str] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), server_default=func.now())


def permanent_ticket(
    sessions: sessionmaker[Session], app_id: str, scene: str, create: Callable[[], tuple[str, str]]
) -> QrTicket:
    """The kept code of ``scene``, else the one ``create`` gets from WeChat (ticket, url), kept.

    No lock is held while WeChat answers (on SQLite it would stop every write, the access token's refresh
    included), so two processes asking for a new scene at the same moment may both ask; the first answer
    is kept and every later request, in any process, reads it.
    """
    with sessions() as session:
        kept = session.get(QrTicket, (app_id, scene))
    if kept is not None:
        return kept
    ticket, url = create()
    with sessions.begin() as session:
        try:
            with session.begin_nested():
                session.add(QrTicket(app_id=app_id, scene=scene, ticket=ticket, url=url))
        except IntegrityError:
            pass  # another process kept its answer first
        return session.get(QrTicket, (app_id, scene), populate_existing=True)
