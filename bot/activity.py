"""Follower bookkeeping: when a follower last wrote (WeChat's 48-hour window) and the numbered list they saw.

A message that needs the database applies its ``Activity`` to the follower row in its own transaction. A
message answered from content alone (``Responder.answer_from_content``) must not wait for a write, so its
activity goes to the ``ActivityRecorder``, which writes the followers of many messages behind, in one
transaction every ``FLUSH_INTERVAL``. Hand-written because the batch has to merge with rows written by
other processes meanwhile (the newest interaction wins), which no queueing library knows.

What a crash can lose: at most the last interval's interaction times of followers who only asked
questions; nothing about registrations. Within a process, a message that needs the database first takes
its follower's pending activity, so "议程" then "2" works at once; across processes, after one interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from models import Follower

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_SECONDS = 0.5

_FOLLOWERS = Follower.__table__
_UPSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


@dataclass
class Activity:
    """What one message says about its follower; handlers set ``last_list`` when they show a numbered list."""

    openid: str
    at: datetime
    last_list: str | None = None

    def merge(self, later: Activity) -> None:
        """Fold a later message's activity into this one: the newest interaction wins."""
        if later.at >= self.at:
            self.at = later.at
            self.last_list = later.last_list or self.last_list

    def apply_to(self, follower: Follower) -> None:
        """Write this activity on the follower row (inside the caller's transaction)."""
        if self.at >= follower.last_interaction_at:
            follower.last_interaction_at = self.at
            follower.last_list = self.last_list or follower.last_list


class ActivityRecorder:
    """Activity of content-only answers, kept in memory and written behind in batches."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._pending: dict[str, Activity] = {}
        self._lock = threading.Lock()

    def record(self, activity: Activity) -> None:
        """Queue ``activity`` for the next flush."""
        with self._lock:
            self._merge(activity)

    def take(self, openid: str) -> Activity | None:
        """The follower's queued activity, removed from the queue (its caller writes it itself)."""
        with self._lock:
            return self._pending.pop(openid, None)

    def flush(self) -> int:
        """Write everything queued in one transaction; returns how many followers were written."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        try:
            with self._sessions.begin() as session:
                connection = session.connection()
                connection.execute(_upsert_statement(connection.dialect.name), [_row(a) for a in batch.values()])
        except Exception:
            # Kept for the next flush rather than lost: the database may be back by then.
            logger.exception("writing follower activity failed; retrying at the next flush")
            with self._lock:
                for activity in batch.values():
                    self._merge(activity)
            raise
        return len(batch)

    def start(self, interval: float = FLUSH_INTERVAL_SECONDS) -> Callable[[], None]:
        """Flush every ``interval`` seconds in a daemon thread; the returned function stops it and flushes."""
        stopping = threading.Event()

        def run() -> None:
            while not stopping.wait(interval):
                try:
                    self.flush()
                except Exception:  # already logged; the thread must outlive a database outage
                    continue

        thread = threading.Thread(target=run, name="activity-recorder", daemon=True)
        thread.start()

        def stop() -> None:
            stopping.set()
            thread.join()
            self.flush()

        return stop

    def _merge(self, activity: Activity) -> None:
        queued = self._pending.get(activity.openid)
        if queued is None:
            self._pending[activity.openid] = Activity(activity.openid, activity.at, activity.last_list)
        else:
            queued.merge(activity)


def _row(activity: Activity) -> dict:
    return {
        "openid": activity.openid,
        "first_seen_at": activity.at,
        "last_interaction_at": activity.at,
        "last_list": activity.last_list,
        "subscribed": True,
    }


def _upsert_statement(dialect: str):
    insert = _UPSERT[dialect](_FOLLOWERS)
    newer = insert.excluded.last_interaction_at >= _FOLLOWERS.c.last_interaction_at
    return insert.on_conflict_do_update(
        index_elements=["openid"],
        set_={
            "last_interaction_at": case((newer, insert.excluded.last_interaction_at), else_=_FOLLOWERS.c.last_interaction_at),
            "last_list": case(
                (newer & insert.excluded.last_list.is_not(None), insert.excluded.last_list),
                else_=_FOLLOWERS.c.last_list,
            ),
        },
    )
