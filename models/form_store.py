"""Where a follower's progress through a form lives: a ``form_states`` row, written in the message's transaction.

The database is the only truth about a form: a Redis restart or outage loses nothing. With Redis
configured, a copy of one fact rides along: an open-form marker per follower
(``models.form_presence.RedisFormPresence``), so that the content path learns without a database round trip
that a follower is outside any form. The marker is set before the transaction commits and deleted only
after, so it may say "open" of a closed form (the database path then decides), never "closed" of an open one.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from models.form_presence import RedisFormPresence
from models.registration import FormState

# Where a session keeps the forms it held, for the markers: openid -> form.
_HELD = "held_forms"

Form = FormState


class FormStore(Protocol):
    def held(self, session: Session, openid: str, *, create: bool = False) -> Form | None:
        """The follower's form, held for ``session``'s transaction (one message of a follower at a time);
        a new empty one when there is none and ``create``, else None. Changes are kept at commit."""

    def peek(self, openid: str) -> Form | None:
        """The follower's form as last kept, without holding it (admin views, tests)."""


class DatabaseForms:
    """Progress in ``form_states`` rows, written with the message's transaction; markers in Redis if given."""

    def __init__(self, sessions: sessionmaker[Session], markers: RedisFormPresence | None = None) -> None:
        self._sessions = sessions
        self._markers = markers
        if markers is not None:
            event.listen(sessions, "before_commit", self._mark_open)
            event.listen(sessions, "after_commit", self._unmark_closed)
            event.listen(sessions, "after_soft_rollback", self._forget_held)

    def held(self, session: Session, openid: str, *, create: bool = False) -> FormState | None:
        # FOR UPDATE: two messages of one follower handled at once take turns on their form (PostgreSQL).
        form = session.get(FormState, openid, with_for_update=True)
        if form is None and create:
            form = FormState(openid=openid, answers={})
            session.add(form)
        if form is not None and self._markers is not None:
            session.info.setdefault(_HELD, {})[openid] = form
        return form

    def peek(self, openid: str) -> FormState | None:
        with self._sessions() as session:
            return session.get(FormState, openid)

    def _mark_open(self, session: Session) -> None:
        held = session.info.get(_HELD)
        if held:
            self._markers.mark_open([form for form in held.values() if form.state is not None])

    def _unmark_closed(self, session: Session) -> None:
        held = session.info.pop(_HELD, None)
        if held:
            self._markers.unmark([openid for openid, form in held.items() if form.state is None])

    def _forget_held(self, session: Session, previous_transaction) -> None:
        if previous_transaction.parent is None:  # the message's transaction, not a savepoint
            session.info.pop(_HELD, None)
