"""Prometheus metrics: every metric the bot exposes on ``/metrics``, defined in this one place.

Producers increment these objects directly (``REGISTRATIONS.labels(status="confirmed").inc()``).
Under ``uvicorn --workers N`` each worker is its own process with its own counters; when
``PROMETHEUS_MULTIPROC_DIR`` names a directory (cleared by ``eventbot serve``, writable by every worker),
prometheus_client writes the values there and ``/metrics`` adds up all workers, whichever one answers.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# WeChat drops a reply after 5 s; the buckets are dense where a Q&A reply should be (a few ms).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 4.0, 5.0)

MESSAGES = Counter(
    "eventbot_messages",
    "Pushes answered on /wechat, by WeChat MsgType and the topic that answered "
    "(retry, late, error and rate_limited are the webhook's own topics; unhandled means no handler matched).",
    ["msg_type", "topic"],
)
REPLY_LATENCY = Histogram(
    "eventbot_reply_latency_seconds",
    "Time from receiving a push to having its reply ready, in seconds.",
    buckets=LATENCY_BUCKETS,
)
DEDUPLICATED_RETRIES = Counter(
    "eventbot_deduplicated_retries",
    "WeChat retries of a message already claimed, answered from the ledger instead of handled again.",
)
REJECTED_REQUESTS = Counter(
    "eventbot_rejected_requests",
    "POSTs to /wechat refused before parsing (bad signature, stale timestamp, too large, malformed).",
    ["reason"],
)

# Produced by the registration, outbound and scheduler modules; defined here so they share one registry.
REGISTRATIONS = Counter(
    "eventbot_registrations",
    "Registration state changes, by the status reached (e.g. confirmed, waitlisted, cancelled, promoted).",
    ["status"],
)
DELIVERIES = Counter(
    "eventbot_deliveries",
    "Outbound delivery attempts, by outcome (sent, failed, unreachable) and WeChat errcode (\"0\" when sent).",
    ["outcome", "errcode"],
)
TOKEN_REFRESHES = Counter(
    "eventbot_token_refreshes",
    "Access-token refreshes against WeChat, by outcome (ok, failed).",
    ["outcome"],
)
SCHEDULER_JOBS = Counter(
    "eventbot_scheduler_jobs",
    "Scheduler job runs, by job kind (e.g. reminder, broadcast, outbox) and outcome (ok, failed).",
    ["job", "outcome"],
)
ACTIVITY_DROPPED = Counter(
    "eventbot_activity_dropped",
    "Follower activity not written behind, by reason (a row the followers table refuses, the queue full).",
    ["reason"],
)


def observe_reply(msg_type: str, topic: str, seconds: float) -> None:
    """Count one answered push and its latency; a ``retry`` answer is a de-duplicated retry."""
    MESSAGES.labels(msg_type=msg_type, topic=topic).inc()
    REPLY_LATENCY.observe(seconds)
    if topic == "retry":
        DEDUPLICATED_RETRIES.inc()


def clear_multiprocess_directory() -> None:
    """Delete the previous run's value files; call once before the workers start (``eventbot serve``).

    Left in place, the counters of processes that no longer exist would be added to the new ones.
    """
    directory = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    if directory:
        for stale in Path(directory).glob("*.db"):
            stale.unlink()


def exposition() -> tuple[bytes, str]:
    """The text format of every metric, summed over all workers in multi-process mode."""
    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
