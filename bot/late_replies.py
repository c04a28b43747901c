"""Where a reply goes when its handler overran WeChat's budget and the webhook already said ``success``.

The reply is always stored in the ledger, so WeChat's retry of the message still gets it. A sink also
sends it as a customer-service message; the outbound layer provides that sink.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Protocol

from bot.responder import Response

logger = logging.getLogger(__name__)


class LateReplySink(Protocol):
    def deliver(self, response: Response) -> None:
        """Send ``response.reply`` to ``response.openid`` outside the webhook request."""


class LedgerOnlySink:
    """Used while no outbound client is configured: the reply waits in the ledger for WeChat's retry."""

    def deliver(self, response: Response) -> None:
        logger.info("late reply kept for WeChat's retry only (no outbound client)", extra={"topic": response.topic})


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
