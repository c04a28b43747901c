"""The background worker: the scheduler, in whichever process holds the leader lock, beside the sender.

Every process may run a worker (``eventbot worker``, or ``eventbot serve`` unless ``--no-scheduler``); on
each tick a worker takes or renews the lock, starts its scheduler when it became leader and stops it
when it lost the lock. The outbox sender runs in every worker: its claims never overlap.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Engine

from models.clock import Clock
from models.db import session_factory
from scheduler.jobs import JobQueue
from scheduler.leader import LEASE_DURATION, LeaderLock, leader_lock
from scheduler.sender import build_sender, start_background_sender
from scheduler.settings import SchedulerSettings
from scheduler.wechat_client import outbound_configured

log = logging.getLogger(__name__)

# Renew well within the lease, so a live leader never loses it between two ticks.
TICK_INTERVAL = LEASE_DURATION / 3


class SchedulerLeader:
    """Runs ``queue`` exactly while this process holds ``lock``."""

    def __init__(self, queue: JobQueue, lock: LeaderLock) -> None:
        self.queue = queue
        self._lock = lock

    @property
    def leading(self) -> bool:
        return self.queue.running

    def tick(self) -> bool:
        """Take or renew the lock and start or stop the scheduler to match; whether this process leads."""
        if self._lock.acquire():
            if not self.queue.running:
                log.info("this process now runs the scheduler")
                self.queue.start()
            return True
        if self.queue.running:
            log.warning("scheduler lock lost to another process; stopping this scheduler")
            self.queue.shutdown(wait=False)
        return False

    def stop(self) -> None:
        """Stop the scheduler and hand the lock on."""
        self.queue.shutdown()
        self._lock.release()


def run_worker(
    settings: SchedulerSettings,
    engine: Engine,
    clock: Clock,
    stop: threading.Event,
    *,
    send_outbox: bool = True,
    interval: timedelta = TICK_INTERVAL,
) -> None:
    """Run until ``stop`` is set: the leader-elected scheduler and, with ``send_outbox``, the outbox sender.

    The sender needs the account's credentials (WECHAT_APP_ID, WECHAT_APP_SECRET); without them the
    worker only schedules, and says so.
    """
    leader = SchedulerLeader(JobQueue(settings, engine, clock), leader_lock(engine))
    stop_sender = None
    if send_outbox and outbound_configured(settings):
        stop_sender = start_background_sender(build_sender(settings, session_factory(engine), clock))
    elif send_outbox:
        log.warning("WECHAT_APP_ID / WECHAT_APP_SECRET not set: the outbox is not sent by this worker")
    try:
        while not stop.is_set():
            try:
                leader.tick()
            except Exception:  # a database hiccup must not end the worker: log it and try on the next tick
                log.exception("scheduler leadership check failed")
            stop.wait(interval.total_seconds())
    finally:
        leader.stop()
        if stop_sender:
            stop_sender()


def start_worker_thread(settings: SchedulerSettings, engine: Engine, clock: Clock, **options) -> Callable[[], None]:
    """Run ``run_worker`` in a daemon thread (the app's lifespan); returns the function that stops it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_worker, args=(settings, engine, clock, stop), kwargs=options, name="eventbot-worker", daemon=True
    )
    thread.start()

    def shutdown() -> None:
        stop.set()
        thread.join(timeout=30)

    return shutdown
