"""Form-presence checks batched per turn of the event loop, for the webhook's content path.

After a broadcast, many pushes arrive together; each must learn whether its follower may be inside a
registration form before it can be answered from content. Asked one by one, every push would wait on
its own Redis round trip with the event loop blocked; here the pushes that reach the question in the same
turn of the loop share one ``MGET`` (or one batch of SQLite reads).
"""

from __future__ import annotations

import asyncio
import logging

from models.clock import Clock
from models.form_presence import FormPresence

logger = logging.getLogger(__name__)


class BatchedFormChecks:
    """``await may_be_open(openid)``: the answer of ``FormPresence``, asked once for a whole turn."""

    def __init__(self, presence: FormPresence, clock: Clock) -> None:
        self._presence = presence
        self._clock = clock
        self._waiting: dict[str, list[asyncio.Future[bool]]] = {}

    async def may_be_open(self, openid: str) -> bool:
        """False only when ``openid`` certainly has no open form now."""
        loop = asyncio.get_running_loop()
        if not self._waiting:
            # After the callbacks already due in this turn: the other pushes that are ready join the batch.
            loop.call_soon(self._ask)
        answer = loop.create_future()
        self._waiting.setdefault(openid, []).append(answer)
        return await answer

    def _ask(self) -> None:
        waiting, self._waiting = self._waiting, {}
        try:
            maybe_open = self._presence.maybe_open_among(list(waiting), self._clock.now())
        except Exception:
            # Whatever failed, no push may be left waiting: "maybe" for all, so the database path answers.
            logger.exception("form presence check failed")
            maybe_open = set(waiting)
        for openid, answers in waiting.items():
            for answer in answers:
                if not answer.done():
                    answer.set_result(openid in maybe_open)
