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


class SignedPush(Base):
    """A signed (timestamp, nonce) pair and the body it first came with: WeChat's signature covers only
    the query, so the same pair with another body is a replay of a leaked URL (``models.push_bindings``)."""

    __tablename__ = "signed_pushes"

    timestamp_nonce: Mapped[str] = mapped_column(String(80), primary_key=True)
    body_sha256: Mapped[str] = mapped_column(String(64))
    bound_at: Mapped[datetime] = mapped_column(AwareDateTime(), index=True)
