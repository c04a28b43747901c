"""Follower bookkeeping: when a follower last wrote (WeChat's 48-hour window) and the numbered list they saw.

A message that needs the database applies its ``Activity`` to the follower row in its own transaction. A
message answered from content alone (``Responder.answer_from_content``) must not wait for a write, so its
activity goes to the ``ActivityRecorder``, which writes the followers of many messages behind, in one
transaction every ``FLUSH_INTERVAL``. Hand-written because the batch has to merge with rows written by
other processes meanwhile (the newest interaction wins), which no queueing library knows.

What a crash can lose: at most the last interval's interaction times of followers who only asked
questions; nothing about registrations. A row the database refuses is dropped alone, never the batch. Within a process, a message that needs the database first takes
its follower's pending activity, so "议程" then "2" works at once; across processes, after one interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, DateTime, String, bindparam, case, func, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from models import Follower
from models.metrics import ACTIVITY_DROPPED
from models.redact import hash_openid

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_SECONDS = 0.5
# Followers waiting to be written: at most a few MB, and more than a broadcast's audience.
MAX_PENDING = 50_000

_FOLLOWERS = Follower.__table__
_OPENID_LENGTH = _FOLLOWERS.c.openid.type.length
_LAST_LIST_LENGTH = _FOLLOWERS.c.last_list.type.length
# The database, not a row, failed: the batch waits for the next flush.
_UNREACHABLE = (OperationalError, InterfaceError)


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
            # Only a follower can write to the account: whoever writes is subscribed (again).
            follower.subscribed = True


class ActivityRecorder:
    """Activity of content-only answers, kept in memory and written behind in batches.

    A row the database refuses never holds up the others: it is dropped, logged once with the reason and
    counted in ``eventbot_activity_dropped``. While the database is unreachable the batch is kept for the
    next flush, up to ``max_pending`` followers; beyond that new followers' activity is dropped (counted).
    """

    def __init__(self, sessions: sessionmaker[Session], *, max_pending: int = MAX_PENDING) -> None:
        self._sessions = sessions
        self._pending: dict[str, Activity] = {}
        self._lock = threading.Lock()
        self._max_pending = max_pending
        self._unreachable = False

    def record(self, activity: Activity) -> None:
        """Queue ``activity`` for the next flush (or drop it: a row the table cannot hold, a full queue)."""
        reason = _unfit(activity)
        if reason is not None:
            _drop(activity, reason)
            return
        with self._lock:
            full = activity.openid not in self._pending and len(self._pending) >= self._max_pending
            if not full:
                self._merge(activity)
        if full:
            ACTIVITY_DROPPED.labels(reason="queue full").inc()

    def take(self, openid: str) -> Activity | None:
        """The follower's queued activity, removed from the queue (its caller writes it itself)."""
        with self._lock:
            return self._pending.pop(openid, None)

    def flush(self) -> int:
        """Write everything queued, in one transaction when the database takes every row; returns how
        many followers were written. Raises (keeping the batch) while the database is unreachable."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        activities = [batch[openid] for openid in sorted(batch)]
        try:
            try:
                self._write(activities)
                written = len(activities)
            except _UNREACHABLE:
                raise
            except SQLAlchemyError:
                # Some row is refused: each on its own, so that only the refused ones are left out.
                written = sum(self._write_alone(activity) for activity in activities)
        except _UNREACHABLE:
            if not self._unreachable:
                logger.exception("writing follower activity failed; kept for the next flush")
            self._unreachable = True
            self._requeue(activities)
            raise
        if self._unreachable:
            logger.warning("follower activity written again")
            self._unreachable = False
        return written

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

    def _write(self, activities: list[Activity]) -> None:
        with self._sessions.begin() as session:
            _write(session.connection(), activities)

    def _write_alone(self, activity: Activity) -> int:
        try:
            self._write([activity])
        except _UNREACHABLE:
            raise
        except SQLAlchemyError as error:
            _drop(activity, type(getattr(error, "orig", None) or error).__name__)
            return 0
        return 1

    def _requeue(self, activities: list[Activity]) -> None:
        with self._lock:
            for activity in activities:
                if activity.openid in self._pending or len(self._pending) < self._max_pending:
                    self._merge(activity)
                else:
                    ACTIVITY_DROPPED.labels(reason="queue full").inc()

    def _merge(self, activity: Activity) -> None:
        queued = self._pending.get(activity.openid)
        if queued is None:
            self._pending[activity.openid] = Activity(activity.openid, activity.at, activity.last_list)
        else:
            queued.merge(activity)


def _unfit(activity: Activity) -> str | None:
    """Why the followers table cannot hold this activity, if it cannot (checked before queueing)."""
    if not 0 < len(activity.openid) <= _OPENID_LENGTH:
        return "openid length"
    if activity.last_list is not None and len(activity.last_list) > _LAST_LIST_LENGTH:
        return "last_list length"
    return None


def _drop(activity: Activity, reason: str) -> None:
    ACTIVITY_DROPPED.labels(reason=reason).inc()
    logger.warning("follower activity dropped: %s", reason, extra={"openid_hash": hash_openid(activity.openid)})


def _write(connection: Connection, activities: list[Activity]) -> None:
    # In openid order, so that two processes' batches lock the rows they share in the same order.
    if connection.dialect.name == "postgresql":
        connection.execute(_POSTGRESQL_UPSERT, {
            "openids": [activity.openid for activity in activities],
            "ats": [activity.at for activity in activities],
            "last_lists": [activity.last_list for activity in activities],
        })
    else:
        connection.execute(_SQLITE_UPSERT, [_row(activity) for activity in activities])


def _row(activity: Activity) -> dict:
    return {
        "openid": activity.openid,
        "first_seen_at": activity.at,
        "last_interaction_at": activity.at,
        "last_list": activity.last_list,
        "subscribed": True,
    }


def _keeping_the_newest(insert):
    """``insert`` as an upsert in which the newest interaction wins over the row already there."""
    newer = insert.excluded.last_interaction_at >= _FOLLOWERS.c.last_interaction_at
    return insert.on_conflict_do_update(
        index_elements=["openid"],
        set_={
            "last_interaction_at": case((newer, insert.excluded.last_interaction_at), else_=_FOLLOWERS.c.last_interaction_at),
            "last_list": case(
                (newer & insert.excluded.last_list.is_not(None), insert.excluded.last_list),
                else_=_FOLLOWERS.c.last_list,
            ),
            # Only a follower can write to the account: whoever writes is subscribed (again).
            "subscribed": case((newer, true()), else_=_FOLLOWERS.c.subscribed),
        },
    )


_SQLITE_UPSERT = _keeping_the_newest(sqlite.insert(_FOLLOWERS))

# On PostgreSQL the batch travels as three arrays, unnested into rows by the server: one parameter set
# instead of one per follower, each of which SQLAlchemy and psycopg processed in Python on the flushing
# thread (time the event loop waits for the GIL: the Q&A benchmark's slowest replies).
_BATCH = func.unnest(
    bindparam("openids", type_=ARRAY(String)),
    bindparam("ats", type_=ARRAY(DateTime(timezone=True))),
    bindparam("last_lists", type_=ARRAY(String)),
).table_valued("openid", "at", "last_list").render_derived()
_POSTGRESQL_UPSERT = _keeping_the_newest(
    postgresql.insert(_FOLLOWERS).from_select(
        ["openid", "first_seen_at", "last_interaction_at", "last_list", "subscribed"],
        select(_BATCH.c.openid, _BATCH.c.at, _BATCH.c.at, _BATCH.c.last_list, true()),
    )
)
