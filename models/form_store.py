"""Where a follower's progress through a form lives: ``form_states`` rows, or Redis on the production path.

A form step (a name, a phone number) changes nothing but the follower's own progress, and in a burst
after a broadcast there are six of them per registration. With Redis configured they never reach the
database: the progress is a Redis key, held for the message by a per-follower Redis lock (the
counterpart of the row's ``FOR UPDATE``) and written when the message's transaction commits, so a step
and its reply are kept or lost together. Only the steps that decide something (确认, cancelling) open a
database transaction. Without Redis the progress is a ``form_states`` row in the message's transaction.

Either way a handler gets an object with the same attributes (``FormState`` or ``FormProgress``) from
``FormStore.held`` and changes it in place.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

import redis
from redis.client import Pipeline
from redis.lock import Lock
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from models.clock import Clock
from models.commit_writes import CommitWrites
from models.registration import FormState, OpenUntilExpiry

# Added to the open-form marker's life: the form's expiry is computed on the event clock, the marker's in Redis.
MARKER_MARGIN_SECONDS = 60
# How long a closed form's last reply is kept for a retry of its message (WeChat retries within seconds).
PROGRESS_KEPT = timedelta(days=1)
# Longer than any message takes (the reply budget is 4 s); a holder that died frees the follower by then.
# A holder still alive after that (a database stalled for half a minute) keeps its form over the next
# message's: the follower is asked a question again, nothing else.
HOLD_SECONDS = 30
# How often a message waiting for the follower's form (their previous message still in hand) asks again.
LOCK_RETRY_SECONDS = 0.005
# Where a session keeps the forms it holds: openid -> (lock token, form).
_HELD = "held_forms"


def open_form_prefix(namespace: str) -> str:
    """The prefix of the Redis keys that mark an open form (read by ``RedisFormPresence``)."""
    return f"{namespace}:open-form:"


@dataclass
class FormProgress(OpenUntilExpiry):
    """A follower's form as kept in Redis: the fields and meaning of a ``FormState`` row."""

    openid: str
    event_id: str | None = None
    state: str | None = None
    answers: dict = field(default_factory=dict)
    expires_at: datetime | None = None
    last_dedup_key: str | None = None
    last_reply: str | None = None

    def to_json(self) -> str:
        # Not dataclasses.asdict: it deep-copies the answers first, a tenth of a form step's CPU.
        values = {name: getattr(self, name) for name in _PROGRESS_FIELDS}
        values["expires_at"] = self.expires_at.isoformat() if self.expires_at else None
        return json.dumps(values, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: bytes) -> FormProgress:
        values = json.loads(text)
        if values["expires_at"]:
            values["expires_at"] = datetime.fromisoformat(values["expires_at"])
        return cls(**values)


_PROGRESS_FIELDS = tuple(progress_field.name for progress_field in fields(FormProgress))


def _progress(stored: bytes | None) -> FormProgress | None:
    return FormProgress.from_json(stored) if stored is not None else None


Form = FormState | FormProgress


class FormStore(Protocol):
    def held(self, session: Session, openid: str, *, create: bool = False) -> Form | None:
        """The follower's form, held for ``session``'s transaction (one message of a follower at a time);
        a new empty one when there is none and ``create``, else None. Changes are kept at commit."""

    def peek(self, openid: str) -> Form | None:
        """The follower's form as last kept, without holding it (admin views, tests)."""


class DatabaseForms:
    """Progress in ``form_states`` rows, written with the message's transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def held(self, session: Session, openid: str, *, create: bool = False) -> FormState | None:
        # FOR UPDATE: two messages of one follower handled at once take turns on their form (PostgreSQL).
        form = session.get(FormState, openid, with_for_update=True)
        if form is None and create:
            form = FormState(openid=openid, answers={})
            session.add(form)
        return form

    def peek(self, openid: str) -> FormState | None:
        with self._sessions() as session:
            return session.get(FormState, openid)


class RedisForms:
    """Progress as a JSON value per follower in Redis, shared by every process and replica.

    No round trip of its own in the usual case, because on loopback the round trips, not Redis, are what
    a form step costs: taking the follower's lock and reading the progress ride on the ledger's claim
    (``hold_along``; ``held`` sends them itself only when the form was busy then, or for another
    follower); the commit writes every held form with its open-form marker and frees the locks, in the
    ``MULTI`` of ``CommitWrites``; a rollback only frees them. The lock is redis-py's protocol,
    hand-driven so that it rides in those pipelines: a random token set with ``NX`` and an expiry, freed
    by redis-py's own compare-and-delete script, so a holder whose lock expired cannot free another's.
    """

    def __init__(self, client: redis.Redis, namespace: str, commit_writes: CommitWrites,
                 sessions: sessionmaker[Session], clock: Clock, *, wait_seconds: float) -> None:
        self._redis = client
        self._prefix = f"{namespace}:form:"
        self._lock_prefix = f"{namespace}:form-lock:"
        self._marker_prefix = open_form_prefix(namespace)
        self._commit_writes = commit_writes
        self._clock = clock
        self._wait_seconds = wait_seconds
        event.listen(sessions, "after_soft_rollback", self._drop_held)

    def held(self, session: Session, openid: str, *, create: bool = False) -> FormProgress | None:
        holding = self._holding(session)
        if openid in holding:
            token, form = holding[openid]
        else:
            token, form = self._hold(openid)
        if form is None and create:
            form = FormProgress(openid)
        holding[openid] = (token, form)
        return form

    def peek(self, openid: str) -> FormProgress | None:
        return _progress(self._redis.get(self._prefix + openid))

    def hold_along(self, pipeline: Pipeline, openid: str) -> Callable[[Session, list], None]:
        """Try to hold ``openid``'s form with the commands of another round trip (the ledger's claim).

        Queues the hold on ``pipeline`` and returns what takes its two results: when the form was free
        it is held for the session, and ``held`` then costs no round trip; when another message had it,
        ``held`` waits for it as usual.
        """
        token = secrets.token_hex(8)
        self._queue_hold(pipeline, openid, token)

        def take(session: Session, results: list) -> None:
            acquired, stored = results
            if acquired:
                self._holding(session)[openid] = (token, _progress(stored))

        return take

    def _holding(self, session: Session) -> dict:
        holding = session.info.get(_HELD)
        if holding is None:
            holding = session.info[_HELD] = {}
            self._commit_writes.add(session, partial(self._keep_held, holding))
        return holding

    def _queue_hold(self, pipeline: Pipeline, openid: str, token: str) -> None:
        pipeline.set(self._lock_prefix + openid, token, nx=True, ex=HOLD_SECONDS)
        pipeline.get(self._prefix + openid)

    def _hold(self, openid: str) -> tuple[str, FormProgress | None]:
        token = secrets.token_hex(8)
        give_up_at = time.monotonic() + self._wait_seconds
        while True:
            with self._redis.pipeline(transaction=False) as pipeline:
                self._queue_hold(pipeline, openid, token)
                acquired, stored = pipeline.execute()
            if acquired:
                return token, _progress(stored)
            if time.monotonic() >= give_up_at:
                raise TimeoutError(f"form of {openid[:6]}… held by another message for {self._wait_seconds} s")
            time.sleep(LOCK_RETRY_SECONDS)

    def _keep_held(self, holding: dict, pipeline: Pipeline) -> None:
        now = self._clock.now()
        for openid, (token, form) in holding.items():
            if form is not None:
                pipeline.set(self._prefix + openid, form.to_json(), ex=PROGRESS_KEPT)
                if form.is_open(now):
                    seconds = math.ceil((form.expires_at - now).total_seconds()) + MARKER_MARGIN_SECONDS
                    pipeline.set(self._marker_prefix + openid, "1", ex=seconds)
                else:
                    pipeline.delete(self._marker_prefix + openid)
            self._release(pipeline, openid, token)
        holding.clear()

    def _drop_held(self, session: Session, previous_transaction) -> None:
        holding = session.info.get(_HELD)
        if previous_transaction.parent is not None or not holding:  # a savepoint, or nothing held
            return
        with self._redis.pipeline(transaction=False) as pipeline:
            for openid, (token, _form) in holding.items():
                self._release(pipeline, openid, token)
            pipeline.execute()
        holding.clear()

    def _release(self, pipeline: Pipeline, openid: str, token: str) -> None:
        # EVAL, not a registered Script: a Script in a pipeline costs a SCRIPT EXISTS round trip per execute.
        pipeline.eval(Lock.LUA_RELEASE_SCRIPT, 1, self._lock_prefix + openid, token)
