"""Inbound messages seen, with the reply they got: WeChat's retries are answered from here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import AwareDateTime, Base


class InboundMessage(Base):
    __tablename__ = "inbound_messages"

    dedup_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # None while the first delivery is being handled; the rendered reply ("" for "success") once done.
    reply_xml: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime] = mapped_column(AwareDateTime(), index=True)
