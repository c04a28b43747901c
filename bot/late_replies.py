"""Where a reply goes when its handler overran WeChat's budget and the webhook already said ``success``.

The reply is always stored in the ledger, so WeChat's retry of the message still gets it. A sink also
sends it as a customer-service message; the outbound layer provides that sink. Once that message is
delivered (or given up), the retention job forgets its text, as it forgets stored replies.
"""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import Future
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from bot.responder import Response
from handlers.replies import News, Reply, Text
from models.deliveries import LATE_REPLY_PURPOSE, enqueue_message

logger = logging.getLogger(__name__)


class LateReplySink(Protocol):
    def deliver(self, response: Response) -> None:
        """Send ``response.reply`` to ``response.openid`` outside the webhook request."""


class LedgerOnlySink:
    """Used while no outbound client is configured: the reply waits in the ledger for WeChat's retry."""

    def deliver(self, response: Response) -> None:
        logger.info("late reply kept for WeChat's retry only (no outbound client)", extra={"topic": response.topic})


class OutboxLateReplySink:
    """Sends a late reply as a customer-service text through the outbox (the sender delivers it).

    The follower just wrote, so WeChat's 48-hour window is open. The reply is keyed by its rendered XML,
    which carries the reply's creation time, so passing the same reply twice records it once.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def deliver(self, response: Response) -> None:
        text = reply_as_text(response.reply)
        if text is None:
            logger.info("late reply has no text form; kept for WeChat's retry only", extra={"topic": response.topic})
            return
        key = "late-reply:" + hashlib.sha256(f"{response.openid}|{response.xml}".encode()).hexdigest()
        with self.sessions.begin() as session:
            enqueue_message(session, openid=response.openid, text=text, purpose=LATE_REPLY_PURPOSE, dedup_key=key)


def reply_as_text(reply: Reply | None) -> str | None:
    """A customer-service text for ``reply``: the text itself, or a news article's title, summary and link."""
    if isinstance(reply, Text):
        return reply.content
    if isinstance(reply, News):
        article = reply.articles[0]
        return "\n".join(part for part in (article.title, article.description, article.url) if part)
    return None


def follow_up(sink: LateReplySink, finished: Future) -> None:
    """Done-callback of an overrun handler: pass its reply, if any, to the sink."""
    if finished.cancelled():
        return
    error = finished.exception()
    if error is not None:
        logger.error("late handler failed", exc_info=error)
        return
    response: Response = finished.result()
    if response.reply is not None:
        sink.deliver(response)
