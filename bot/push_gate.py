"""What a push must learn from shared state before it is answered, asked once per turn of the event loop.

After a broadcast many pushes arrive together, and each needs three answers: may its signed pair carry
this body (``models.push_bindings``), is its follower over the rate limit (``bot.rate_limit``), and may
the follower be inside a registration form (``models.form_presence``). Asked push by push, each would
wait on its own round trips with the event loop blocked; here the pushes that arrive in the same turn
share them: with Redis one round trip per question for the whole batch; on SQLite one write of the
bindings' side file and one indexed read; else one transaction in a worker thread for the bindings and
in-process answers for the rest.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from dataclasses import dataclass

from bot.rate_limit import Admission, FollowerRateLimit
from models.clock import Clock
from models.form_presence import FormPresence
from models.push_bindings import PushBindings, body_digest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Push:
    """One verified push, as the gate sees it."""

    openid: str
    # The signed "timestamp|nonce" and the body it came with; None when the body carries its own signature
    # (safe mode's msg_signature).
    pair: str | None = None
    body: bytes = b""
    # Whether the follower's rate limit applies (not to organizers, not to WeChat's own notices).
    limited: bool = False
    # Whether the content path may answer it, so whether its form presence is worth asking.
    wants_presence: bool = False


@dataclass(frozen=True)
class Verdict:
    # False: the signed pair came with another body first (a replay); nothing else was asked or changed.
    bound: bool
    admission: Admission = Admission.ALLOWED
    # False only when the follower certainly has no open form.
    maybe_in_form: bool = True


REPLAYED = Verdict(bound=False)


class PushGate:
    """``await check(push)``: the push's ``Verdict``, settled together with the others of its turn."""

    def __init__(
        self,
        bindings: PushBindings,
        rate_limit: FollowerRateLimit,
        presence: FormPresence | None,
        clock: Clock,
        executor: Executor,
    ) -> None:
        self._bindings = bindings
        self._rate_limit = rate_limit
        self._presence = presence
        self._clock = clock
        self._executor = executor
        self._waiting: list[tuple[Push, asyncio.Future[Verdict]]] = []
        self._settling: asyncio.Task | None = None

    async def check(self, push: Push) -> Verdict:
        loop = asyncio.get_running_loop()
        if not self._waiting:
            # The task's first step runs after the callbacks already due in this turn: the other pushes that
            # are ready join the batch. Held, so that it is not collected while it runs.
            self._settling = loop.create_task(self._settle_waiting())
        verdict = loop.create_future()
        self._waiting.append((push, verdict))
        return await verdict

    async def _settle_waiting(self) -> None:
        batch, self._waiting = self._waiting, []
        try:
            verdicts = await self._settle([push for push, _ in batch])
        except Exception as error:
            # No push may be left waiting; the webhook turns the error into its 500.
            verdicts = [error] * len(batch)
        for (_, future), verdict in zip(batch, verdicts):
            if future.done():
                continue
            if isinstance(verdict, Exception):
                future.set_exception(verdict)
            else:
                future.set_result(verdict)

    async def _settle(self, pushes: list[Push]) -> list[Verdict]:
        # First the bindings: a refused push asks nothing else, so a replay neither spends its follower's
        # rate limit nor reads anything.
        wanted = {push.pair: body_digest(push.body) for push in pushes if push.pair is not None}
        bound = self._bindings.bound_without_transaction(wanted) if wanted else {}
        rest = {pair: digest for pair, digest in wanted.items() if pair not in bound}
        if rest:
            loop = asyncio.get_running_loop()
            bound |= await loop.run_in_executor(self._executor, self._bindings.bind_in_database, rest)
        admitted = [push.pair is None or bound[push.pair] == wanted[push.pair] for push in pushes]
        limited = [index for index, push in enumerate(pushes) if admitted[index] and push.limited]
        admissions = dict(zip(limited, self._rate_limit.admit_all([pushes[index].openid for index in limited])))
        asking = [push.openid for push, ok in zip(pushes, admitted) if ok and push.wants_presence]
        maybe_in_form = self._maybe_in_form(list(dict.fromkeys(asking)))
        return [
            Verdict(
                bound=True,
                admission=admissions.get(index, Admission.ALLOWED),
                maybe_in_form=not push.wants_presence or push.openid in maybe_in_form,
            )
            if admitted[index]
            else REPLAYED
            for index, push in enumerate(pushes)
        ]

    def _maybe_in_form(self, openids: list[str]) -> set[str]:
        if not openids:
            return set()
        if self._presence is None:
            return set(openids)
        try:
            return self._presence.maybe_open_among(openids, self._clock.now())
        except Exception:
            # Whatever failed, "maybe" for all: the database path answers them.
            logger.exception("form presence check failed")
            return set(openids)
