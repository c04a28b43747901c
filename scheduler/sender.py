"""The outbox sender: claims pending deliveries, sends them through WeChat, records what happened.

Each delivery goes pending → claimed → sending → sent | failed | unknown (or straight to unreachable):

1. **claim** (one transaction, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so several senders share the
   work without overlap; SQLite serialises it with ``BEGIN IMMEDIATE``): choose the channel, mark the row
   ``claimed`` with this run's ``attempt_id``. Nothing has left yet.
2. **sending** (its own commit, just before the HTTP call): from here on WeChat may have the message.
3. **outcome** (its own commit): sent with msgid, failed with errcode/errmsg, back to pending for a
   transient error (bounded backoff) or an account-wide pause.

Crash recovery, when a sender died at any instant (``recover``, run at start and on every poll, for
rows older than ``stale_after`` so a live peer's rows are left alone):

- a ``claimed`` row goes back to ``pending``: step 2 is committed before every call, so a row still
  ``claimed`` provably never left;
- a ``sending`` row becomes ``unknown`` and is **not** resent. Customer-service and template messages
  carry no idempotency key at WeChat, so there is no way to ask whether the call arrived; resending could
  deliver twice, and "at most once" is the promise. The admin report counts these rows for a human.

The same reasoning applies to a call that ends without a complete answer (read timeout, dropped
connection): the row becomes ``unknown`` rather than being retried.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.metrics import DELIVERIES
from bot.settings import Settings
from bot.wechat_client import CallError, EventbotWeChatClient, Outcome, build_client, classify
from models.outbox import (
    CLAIMED,
    FAILED,
    PENDING,
    SENDING,
    SENT,
    UNKNOWN,
    UNREACHABLE,
    Campaign,
    Delivery,
    SenderState,
    account_pause,
    pause_account,
)
from scheduler.channels import CUSTOMER_SERVICE, SUBSCRIBE, TEMPLATE, Route, choose_route

logger = logging.getLogger(__name__)

# Transient errors are retried with doubling delays, at most this many attempts in all.
MAX_ATTEMPTS = 5
FIRST_RETRY_DELAY = timedelta(seconds=30)
MAX_RETRY_DELAY = timedelta(minutes=15)
# A row claimed longer ago than this belongs to a sender that died: calls time out long before.
DEFAULT_STALE_AFTER = timedelta(minutes=5)


def retry_delay(attempts: int) -> timedelta:
    """The wait before the next try after ``attempts`` transient failures."""
    return min(FIRST_RETRY_DELAY * 2 ** (attempts - 1), MAX_RETRY_DELAY)


@dataclass(frozen=True)
class Job:
    """One claimed delivery and what to send for it."""

    delivery_id: int
    openid: str
    route: Route


class Sender:
    """Sends the outbox with ``[delivery] concurrency`` calls at a time; tests drive ``run_once``."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        client: EventbotWeChatClient,
        clock: Clock,
        *,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.stale_after = stale_after
        self.concurrency = settings.content.delivery.concurrency
        self.app_id = settings.wechat_app_id
        self.run_id = uuid.uuid4().hex
        self._pause_seen = threading.Event()

    # --- account-wide pause ---------------------------------------------------------------------
    def pause_state(self) -> SenderState | None:
        """The pause in force, if any."""
        with self.sessions() as session:
            return account_pause(session, self.app_id)

    def resume(self) -> None:
        """Lift a pause (after the quota reset or the whitelist was fixed)."""
        with self.sessions.begin() as session:
            state = session.get(SenderState, self.app_id)
            if state is not None:
                state.paused_errcode = state.paused_errmsg = state.paused_at = None

    def _pause(self, error: CallError) -> None:
        with self.sessions.begin() as session:
            pause_account(session, self.app_id, error.errcode, error.errmsg, self.clock.now())
        self._pause_seen.set()
        logger.critical(
            "outbound sending PAUSED by an account-wide WeChat error; resume with `eventbot send --resume`",
            extra={"errcode": error.errcode, "errmsg": error.errmsg},
        )

    # --- the loop -------------------------------------------------------------------------------
    def recover(self) -> int:
        """Resolve rows left claimed or sending by a sender that died (see the module docstring)."""
        cutoff = self.clock.now() - self.stale_after
        with self.sessions.begin() as session:
            released = session.execute(
                update(Delivery)
                .where(Delivery.status == CLAIMED, Delivery.claimed_at <= cutoff)
                .values(status=PENDING, attempt_id=None)
            ).rowcount
            uncertain = session.execute(
                update(Delivery)
                .where(Delivery.status == SENDING, Delivery.claimed_at <= cutoff)
                .values(
                    status=UNKNOWN,
                    finished_at=self.clock.now(),
                    errmsg="sender stopped during the call: WeChat may have delivered it, so it is not resent",
                )
            ).rowcount
        if uncertain:
            logger.error("deliveries interrupted mid-call marked unknown (not resent)", extra={"count": uncertain})
        return released + uncertain

    def run_once(self) -> int:
        """Claim one batch of due deliveries and send it; the number of deliveries handled."""
        jobs, unreachable = self._claim()
        if jobs:
            with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="sender") as pool:
                list(pool.map(self._deliver, jobs))
        return len(jobs) + unreachable

    def run_until_idle(self) -> None:
        """Send until nothing is due now (or the account is paused)."""
        self.recover()
        while self.run_once():
            pass

    def run_forever(self, stop: threading.Event, poll_seconds: float = 2.0) -> None:
        """The background loop of ``eventbot send`` and of the app: poll, recover, send, until ``stop``."""
        logger.info("outbox sender started", extra={"run_id": self.run_id})
        while not stop.is_set():
            try:
                self.recover()
                busy = self.run_once()
            except Exception:  # one place for the loop's errors: logged, then the loop goes on
                logger.exception("outbox sender iteration failed")
                busy = 0
            if not busy:
                stop.wait(poll_seconds)

    # --- steps ----------------------------------------------------------------------------------
    def _claim(self) -> tuple[list[Job], int]:
        now = self.clock.now()
        jobs: list[Job] = []
        unreachable = 0
        with self.sessions.begin() as session:
            if account_pause(session, self.app_id) is not None:
                return [], 0
            # Resumed, possibly by another process (`eventbot send --resume`): this batch may send again.
            self._pause_seen.clear()
            rows = session.scalars(
                select(Delivery)
                .where(Delivery.status == PENDING, or_(Delivery.not_before.is_(None), Delivery.not_before <= now))
                .order_by(Delivery.id)
                .limit(self.concurrency * 4)
                .with_for_update(skip_locked=True)
            ).all()
            campaigns: dict[int, Campaign] = {}
            for row in rows:
                campaign = campaigns.get(row.campaign_id) or session.get(Campaign, row.campaign_id)
                campaigns[row.campaign_id] = campaign
                route = choose_route(session, self.settings, campaign, row, now)
                row.claimed_at = now
                row.attempt_id = self.run_id
                if route.channel is None:
                    row.status, row.errmsg, row.finished_at = UNREACHABLE, route.reason[:255], now
                    DELIVERIES.labels(outcome=UNREACHABLE, errcode="none").inc()
                    unreachable += 1
                    continue
                row.status, row.channel = CLAIMED, route.channel
                jobs.append(Job(row.id, row.openid, route))
                # Flushed per row so the next row's customer-service quota count sees this one.
                session.flush()
        return jobs, unreachable

    def _transition(self, job: Job, expected: str, **values) -> bool:
        """Move the row on only if it is still this run's and in ``expected`` state (recovery may have taken it)."""
        with self.sessions.begin() as session:
            result = session.execute(
                update(Delivery)
                .where(Delivery.id == job.delivery_id, Delivery.attempt_id == self.run_id, Delivery.status == expected)
                .values(**values)
            )
            return result.rowcount == 1

    def _deliver(self, job: Job) -> None:
        if self._pause_seen.is_set():
            # Another job of this batch hit an account-wide error: this one has not left, so it waits.
            self._transition(job, CLAIMED, status=PENDING, attempt_id=None)
            return
        if not self._transition(job, CLAIMED, status=SENDING, claimed_at=self.clock.now(), attempts=Delivery.attempts + 1):
            return
        try:
            result = self._call(job)
        except Exception as error:  # classify maps every call error; anything else re-raises from there
            self._record_failure(job, classify(error))
            return
        msgid = (result.get("msgid") or result.get("msg_id")) if isinstance(result, dict) else None
        DELIVERIES.labels(outcome=SENT, errcode="0").inc()
        self._transition(
            job, SENDING, status=SENT, msgid=str(msgid) if msgid else None, errcode=None, errmsg=None, finished_at=self.clock.now()
        )

    def _call(self, job: Job):
        route = job.route
        if route.channel == CUSTOMER_SERVICE:
            return self.client.message.send_text(job.openid, route.text)
        if route.channel == TEMPLATE:
            return self.client.message.send_template(job.openid, route.template_id, route.data)
        if route.channel == SUBSCRIBE:
            return self.client.message.send_subscribe_message(job.openid, route.template_id, route.data)
        raise ValueError(f"unknown channel {route.channel!r}")

    def _record_failure(self, job: Job, error: CallError) -> None:
        now = self.clock.now()
        recorded = {"errcode": error.errcode, "errmsg": error.errmsg[:255]}
        if error.outcome is Outcome.ACCOUNT:
            # Not this follower's fault and not sent: back to pending, tried again once resumed.
            outcome = "paused"
            self._transition(job, SENDING, status=PENDING, attempt_id=None, **recorded)
            self._pause(error)
        elif error.outcome is Outcome.TRANSIENT and (attempts := self._attempts(job)) < MAX_ATTEMPTS:
            outcome = "retry"
            delay = retry_delay(attempts)
            self._transition(job, SENDING, status=PENDING, attempt_id=None, not_before=now + delay, **recorded)
            logger.warning("transient WeChat error; will retry", extra={**recorded, "retry_in_seconds": delay.total_seconds()})
        elif error.outcome is Outcome.UNCERTAIN:
            outcome = UNKNOWN
            self._transition(job, SENDING, status=UNKNOWN, finished_at=now, **recorded)
            logger.error("WeChat's answer was lost; the delivery is marked unknown, not resent", extra=recorded)
        else:  # a follower's error, or a transient one that outlived its attempts
            outcome = FAILED
            self._transition(job, SENDING, status=FAILED, finished_at=now, **recorded)
        DELIVERIES.labels(outcome=outcome, errcode=str(error.errcode)).inc()

    def _attempts(self, job: Job) -> int:
        with self.sessions() as session:
            return session.scalar(select(Delivery.attempts).where(Delivery.id == job.delivery_id))


def start_background_sender(sender: Sender) -> Callable[[], None]:
    """Run ``sender`` in a daemon thread; returns the function that stops it and waits."""
    stop = threading.Event()
    thread = threading.Thread(target=sender.run_forever, args=(stop,), name="outbox-sender", daemon=True)
    thread.start()

    def shutdown() -> None:
        stop.set()
        thread.join(timeout=30)

    return shutdown



def build_sender(settings: Settings, sessions: sessionmaker[Session], clock: Clock, **options) -> Sender:
    """A sender for these settings, with the shared-token WeChat client."""
    return Sender(settings, sessions, build_client(settings, sessions, clock), clock, **options)
