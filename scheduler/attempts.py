"""One delivery attempt: the job a sender thread works on, the call for its channel, and what its outcome
writes to the delivery row (sent, retried later with a doubling delay, failed, unknown, or paused)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from models.outbox import FAILED, PENDING, SENT, UNKNOWN
from scheduler.channels import CUSTOMER_SERVICE, SUBSCRIBE, TEMPLATE, Route
from scheduler.wechat_client import CallError, EventbotWeChatClient, Outcome

logger = logging.getLogger(__name__)

# Transient errors are retried with doubling delays, at most this many attempts in all.
MAX_ATTEMPTS = 5
FIRST_RETRY_DELAY = timedelta(seconds=30)
MAX_RETRY_DELAY = timedelta(minutes=15)


def retry_delay(attempts: int) -> timedelta:
    """The wait before the next try after ``attempts`` transient failures."""
    return min(FIRST_RETRY_DELAY * 2 ** (attempts - 1), MAX_RETRY_DELAY)


@dataclass(frozen=True)
class Job:
    """One claimed delivery, what to send for it, and its attempt number once it is sending."""

    delivery_id: int
    openid: str
    route: Route
    attempt: int


@dataclass(frozen=True)
class CallResult:
    """How one job's call ended: sent (``msgid``), failed (``error``) or not made (``called`` False)."""

    job: Job
    called: bool = True
    msgid: str | None = None
    error: CallError | None = None


def call_wechat(client: EventbotWeChatClient, job: Job):
    """Make ``job``'s call on the channel its route chose; WeChat's answer."""
    route = job.route
    if route.channel == CUSTOMER_SERVICE:
        return client.message.send_text(job.openid, route.text)
    if route.channel == TEMPLATE:
        return client.message.send_template(job.openid, route.template_id, route.data)
    if route.channel == SUBSCRIBE:
        return client.message.send_subscribe_message(job.openid, route.template_id, route.data)
    raise ValueError(f"unknown channel {route.channel!r}")


def outcome_values(result: CallResult, now: datetime) -> tuple[dict, tuple[str, str] | None]:
    """The row's new values after ``result`` and the outcome to count (None: not called); logs it."""
    job, error = result.job, result.error
    if not result.called:
        # Its worker saw an account-wide pause first: it never left, so it waits like a claimed row.
        return {"status": PENDING, "attempt_id": None, "attempts": job.attempt - 1}, None
    if error is None:
        return {"status": SENT, "msgid": result.msgid, "errcode": None, "errmsg": None, "finished_at": now}, (SENT, "0")
    recorded = {"errcode": error.errcode, "errmsg": error.errmsg[:255]}
    if error.outcome is Outcome.ACCOUNT:
        # Not this follower's fault and not sent: back to pending, tried again once resumed.
        outcome, values = "paused", {"status": PENDING, "attempt_id": None}
    elif error.outcome is Outcome.TRANSIENT and job.attempt < MAX_ATTEMPTS:
        outcome = "retry"
        delay = retry_delay(job.attempt)
        values = {"status": PENDING, "attempt_id": None, "not_before": now + delay}
        logger.warning(
            "transient WeChat error; will retry",
            extra={"errcode": error.errcode, "errmsg": error.errmsg, "retry_in_seconds": delay.total_seconds()},
        )
    elif error.outcome is Outcome.UNCERTAIN:
        outcome, values = UNKNOWN, {"status": UNKNOWN, "finished_at": now}
        logger.error(
            "WeChat's answer was lost; the delivery is marked unknown, not resent",
            extra={"errcode": error.errcode, "errmsg": error.errmsg},
        )
    else:  # a follower's error, or a transient one that outlived its attempts
        outcome, values = FAILED, {"status": FAILED, "finished_at": now}
    return recorded | values, (outcome, str(error.errcode))
