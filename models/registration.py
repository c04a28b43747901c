"""Registrations and form progress, with the transactions that keep seats and the waitlist right.

Every seat decision (register, cancel, change of attendance, walk-in) runs under ``lock_event``, in the
caller's transaction: SQLite already serialises writers (``BEGIN IMMEDIATE``, see ``models.db``), on
PostgreSQL a transaction-scoped advisory lock per event does the same. So within one event the count of
confirmed seats and the waitlist order are read and written by one transaction at a time, and
``confirmed on site <= capacity`` holds after every commit. The database itself refuses a second active
registration per (event, openid), a duplicate check-in code per event and a duplicate waitlist position.

The lock is held until the caller commits, so in a burst every confirmation waits for the one before it
to commit: ``lock_event`` first writes what the session has pending, and ``register`` does all it can
before taking the lock, then decides the place and inserts the row in one statement (on PostgreSQL sent
together with the lock, in one round trip). What is left under the lock is that statement and what the
caller writes after it (the reply kept for a retry) and commits.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    insert,
    null,
    select,
    text,
    update,
)
from sqlalchemy import event as orm_event
from sqlalchemy import inspect as inspect_instance
from sqlalchemy.orm import Mapped, Session, make_transient_to_detached, mapped_column

from models.base import AwareDateTime, Base

CONFIRMED = "confirmed"
WAITLISTED = "waitlisted"
CANCELLED = "cancelled"
ONSITE = "onsite"
ONLINE = "online"

# No 0/O, 1/I/L: codes are read aloud and typed at the door.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
# The form's fields, each stored in its own column.
FIELD_COLUMNS = ("name", "phone", "company", "title")


class Registration(Base):
    """One follower's registration for one event; a cancelled one stays as history."""

    __tablename__ = "registrations"
    __table_args__ = (
        UniqueConstraint("event_id", "checkin_code"),
        CheckConstraint(f"status IN ('{CONFIRMED}', '{WAITLISTED}', '{CANCELLED}')", name="status"),
        CheckConstraint(f"attendance IN ('{ONSITE}', '{ONLINE}')", name="attendance"),
        CheckConstraint(f"(status = '{WAITLISTED}') = (position IS NOT NULL)", name="position_iff_waitlisted"),
        # One registration per (event, openid) that is not cancelled.
        Index(
            "uq_registrations_active_openid",
            "event_id",
            "openid",
            unique=True,
            sqlite_where=text(f"status != '{CANCELLED}'"),
            postgresql_where=text(f"status != '{CANCELLED}'"),
        ),
        Index(
            "uq_registrations_waitlist_position",
            "event_id",
            "position",
            unique=True,
            sqlite_where=text("position IS NOT NULL"),
            postgresql_where=text("position IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(128))
    phone: Mapped[str | None] = mapped_column(String(32))
    company: Mapped[str | None] = mapped_column(String(128))
    title: Mapped[str | None] = mapped_column(String(128))
    attendance: Mapped[str] = mapped_column(String(16), default=ONSITE)
    status: Mapped[str] = mapped_column(String(16))
    # Place in the waitlist, 1 first; None unless waitlisted.
    position: Mapped[int | None] = mapped_column(Integer)
    checkin_code: Mapped[str] = mapped_column(String(CODE_LENGTH))
    created_at: Mapped[datetime] = mapped_column(AwareDateTime())
    updated_at: Mapped[datetime] = mapped_column(AwareDateTime())
    checked_in_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    # When the registration last became confirmed (registered, or promoted from the waitlist): a reminder
    # goes only to people confirmed by its time. Stamped by ``_stamp_confirmation`` below.
    confirmed_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    # Added at the door by an organizer (name and phone only): its openid is a placeholder, so no message
    # ever goes to it, and the organizer's figures count it apart from those who registered. A default in
    # the database only: ``register``'s insert statement (sent by hand on PostgreSQL) never names it.
    walk_in: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # Which privacy notice the follower agreed to before the form's first field, and when.
    notice_version: Mapped[str | None] = mapped_column(String(32))
    consent_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    # When the personal fields were erased (the follower asked, or the retention period ended).
    erased_at: Mapped[datetime | None] = mapped_column(AwareDateTime())

    @property
    def takes_seat(self) -> bool:
        return self.status == CONFIRMED and self.attendance == ONSITE


@orm_event.listens_for(Registration, "before_insert")
@orm_event.listens_for(Registration, "before_update")
def _stamp_confirmation(_mapper, _connection, registration: Registration) -> None:
    # One place for every path that confirms through the ORM (promotion, switch to online; ``register``
    # inserts with a statement of its own and stamps there); each seat decision sets updated_at to its own
    # time, which is therefore the moment of confirmation.
    became_confirmed = inspect_instance(registration).attrs.status.history.has_changes()
    if registration.status == CONFIRMED and (became_confirmed or registration.confirmed_at is None):
        registration.confirmed_at = registration.updated_at


class OpenUntilExpiry:
    """What makes a form open, shared by the ``FormState`` row and its Redis counterpart: a state, and an
    expiry not yet reached."""

    state: str | None
    expires_at: datetime | None

    def is_open(self, now: datetime) -> bool:
        return self.state is not None and self.expires_at is not None and now < self.expires_at


class FormState(OpenUntilExpiry, Base):
    """A follower's conversation with the registration flow, and the last message it answered.

    ``state`` is None when no form is open. The last dedup key and reply stay after the form ends, so a
    retried message gets the reply it got the first time even when the ledger did not keep it.
    """

    __tablename__ = "form_states"

    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str | None] = mapped_column(String(32))
    answers: Mapped[dict] = mapped_column(JSON, default=dict)
    expires_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    last_dedup_key: Mapped[str | None] = mapped_column(String(255))
    last_reply: Mapped[str | None] = mapped_column(Text)


class AlreadyRegistered(Exception):
    """The follower already holds an active registration for the event."""

    def __init__(self, registration: Registration) -> None:
        super().__init__(registration.id)
        self.registration = registration


@dataclass
class SeatChange:
    """What a seat decision did: the registration it concerned and anyone it promoted from the waitlist."""

    registration: Registration
    promoted: list[Registration] = field(default_factory=list)


_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext(%s))"


def _lock_key(event_id: str) -> str:
    return f"registrations:{event_id}"


def lock_event(session: Session, event_id: str) -> None:
    """Serialise seat decisions for ``event_id`` until the caller's transaction ends.

    What the session has pending is written first: every statement run under the lock keeps every other
    seat decision of the event waiting.
    """
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql(_LOCK_SQL, (_lock_key(event_id),))
    # SQLite: every transaction already holds the database's write lock (BEGIN IMMEDIATE).


def _is_active_registration_of(event_id, openid):
    """The condition on registrations: ``openid``'s for the event, not cancelled (values or bind parameters)."""
    return and_(Registration.event_id == event_id, Registration.openid == openid, Registration.status != CANCELLED)


def active_registration(session: Session, event_id: str, openid: str) -> Registration | None:
    """The follower's registration for the event that is not cancelled, if any."""
    return session.scalar(select(Registration).where(_is_active_registration_of(event_id, openid)))


def phone_registered_by_another(session: Session, event_id: str, openid: str, phone: str) -> bool:
    """Whether a follower other than ``openid`` holds an active registration for the event with ``phone``."""
    return session.scalar(
        select(
            exists().where(
                Registration.event_id == event_id, Registration.phone == phone, Registration.openid != openid,
                Registration.status != CANCELLED,
            )
        )
    )


def seats_taken(session: Session, event_id: str) -> int:
    return session.scalar(
        select(func.count()).where(
            Registration.event_id == event_id, Registration.status == CONFIRMED, Registration.attendance == ONSITE
        )
    )


def _new_checkin_code() -> str:
    # Not looked up first: with 31**6 (887 million) codes and a few thousand per event, a clash is about a
    # one-in-200,000 chance per registration, and the unique constraint refuses it (the message fails with
    # an apology, the form stays at 确认, and the follower's next 确认 draws again). The lookup cost a
    # round trip in every confirmation, in a burst the one step that queues.
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _place(event_id, capacity):
    """Where a newcomer on site goes: ``seat_free`` (a seat is free) and ``next_position`` (the end of the
    waitlist), from one pass over the event's rows. A one-row subquery, so it can also feed an insert."""
    on_site = (Registration.status == CONFIRMED) & (Registration.attendance == ONSITE)
    return (
        select(
            (func.count().filter(on_site) < capacity).label("seat_free"),
            (func.coalesce(func.max(Registration.position), 0) + 1).label("next_position"),
        )
        .where(Registration.event_id == event_id)
        .subquery("place")
    )


def _placement(session: Session, event_id: str, attendance: str, capacity: int) -> tuple[str, int | None]:
    """(status, position) for a newcomer: a seat if one is free (or online), else the end of the waitlist.

    Asked before the registration itself is added or changed, so it does not count itself.
    """
    if attendance == ONLINE:
        return CONFIRMED, None
    place = session.execute(select(_place(event_id, capacity))).one()
    return (CONFIRMED, None) if place.seat_free else (WAITLISTED, place.next_position)


def _close_gap(session: Session, event_id: str, vacated: int) -> None:
    """Move everyone behind ``vacated`` one place up the waitlist."""
    # Two steps through negative numbers: PostgreSQL checks a unique index row by row during an
    # UPDATE, so shifting positive positions in place could collide with a row not yet moved.
    behind = (Registration.event_id == event_id, Registration.position > vacated)
    fetch = {"synchronize_session": "fetch"}
    session.execute(
        update(Registration).where(*behind).values(position=-(Registration.position - 1)), execution_options=fetch
    )
    session.execute(
        update(Registration)
        .where(Registration.event_id == event_id, Registration.position < 0)
        .values(position=-Registration.position),
        execution_options=fetch,
    )


def _leave_waitlist(session: Session, registration: Registration, status: str) -> None:
    vacated = registration.position
    registration.status, registration.position = status, None
    session.flush()
    _close_gap(session, registration.event_id, vacated)


def _fill_free_seats(session: Session, event_id: str, capacity: int, now: datetime) -> list[Registration]:
    """Promote the head of the waitlist while seats are free."""
    promoted = []
    while seats_taken(session, event_id) < capacity:
        first = session.scalar(
            select(Registration).where(Registration.event_id == event_id, Registration.position == 1)
        )
        if first is None:
            break
        first.updated_at = now
        _leave_waitlist(session, first, CONFIRMED)
        promoted.append(first)
    return promoted


@cache
def _insert_placed_statement(dialect_name: str):
    """The insert that places a newcomer where ``_placement`` would and inserts in one statement, or
    inserts nothing when the follower already holds an active registration for the event.

    Built once with bound parameters: building it per registration cost more CPU than running it, and
    ran while the event was locked.
    """
    event_id, openid = bindparam("event_id", type_=String), bindparam("openid", type_=String)
    place = _place(event_id, bindparam("capacity", type_=Integer))
    takes_seat = bindparam("online", type_=Boolean) | place.c.seat_free
    moment = bindparam("now", type_=Registration.created_at.type)
    consent_at = bindparam("consent_at", type_=Registration.consent_at.type)
    if dialect_name == "postgresql":  # a NULL (no consent: a walk-in) in the SELECT would otherwise be text
        consent_at = cast(consent_at, Registration.consent_at.type)
    values = {
        "event_id": event_id,
        "openid": openid,
        "attendance": bindparam("attendance", type_=String),
        "status": case((takes_seat, CONFIRMED), else_=WAITLISTED),
        "position": case((takes_seat, null()), else_=place.c.next_position),
        "checkin_code": bindparam("checkin_code", type_=String),
        "created_at": moment,
        "updated_at": moment,
        # What ``_stamp_confirmation`` does for the ORM's updates: a bulk insert does not run it.
        "confirmed_at": case((takes_seat, moment), else_=null()),
        **{name: bindparam(name, type_=Registration.__table__.c[name].type) for name in (*FIELD_COLUMNS, "notice_version")},
        "consent_at": consent_at,
    }
    already_active = exists().where(_is_active_registration_of(event_id, openid))
    rows = select(*(value.label(name) for name, value in values.items())).select_from(place).where(~already_active)
    return insert(Registration.__table__).from_select(list(values), rows).returning(*Registration.__table__.c)


@cache
def _compiled_for_psycopg(dialect):
    """The placing insert as psycopg's SQL, and each parameter's bind processor (None: passed as is)."""
    compiled = _insert_placed_statement(dialect.name).compile(dialect=dialect)
    processors = {name: bind.type.bind_processor(dialect) for name, bind in compiled.binds.items()}
    return compiled, processors


def _insert_placed(session: Session, parameters: dict) -> Registration | None:
    """Insert the registration where ``_placement`` would put it; None (and nothing inserted) when the
    follower already holds an active registration for the event. The caller holds the event's lock."""
    return session.scalars(_insert_placed_as_rows(), parameters).one_or_none()


@cache
def _insert_placed_as_rows():
    # A Core insert read back as ORM rows: passing parameters to an ORM insert would make it a bulk insert.
    return select(Registration).from_statement(_insert_placed_statement("sqlite"))


def _lock_and_insert_placed(session: Session, event_id: str, parameters: dict) -> Registration | None:
    """PostgreSQL: take the event's lock and insert as ``_insert_placed`` does, in one round trip.

    By hand on psycopg's pipeline mode, because SQLAlchemy reads each statement's result before sending
    the next. Under a burst every confirmation queues on the lock, and each round trip made under it cost
    a return to Python that waited for the GIL; now the lock is granted and the insert runs inside
    PostgreSQL before anything comes back. Both statements read fresh snapshots in order (READ
    COMMITTED), so the insert sees every seat decided before the lock was granted.
    """
    session.flush()  # what the transaction wrote before goes first, outside the lock
    connection = session.connection()
    compiled, processors = _compiled_for_psycopg(connection.dialect)
    # What SQLAlchemy would do to each value on its way to the driver (AwareDateTime: refuse naive, to UTC).
    values = {
        name: processors[name](value) if processors.get(name) else value
        for name, value in compiled.construct_params(parameters).items()
    }
    driver = connection.connection.driver_connection
    with driver.pipeline():
        driver.execute(_LOCK_SQL, [_lock_key(event_id)])
        cursor = driver.execute(str(compiled), values)
    row = cursor.fetchone()
    if row is None:
        return None
    columns = Registration.__table__.c
    loaded = {
        description.name: _result_value(columns[description.name], value, connection.dialect)
        for description, value in zip(cursor.description, row)
    }
    registration = Registration(**loaded)
    # The row exists already: the session takes the object as loaded, with no INSERT of its own.
    make_transient_to_detached(registration)
    session.add(registration)
    return registration


def _result_value(column, value, dialect):
    processor = column.type.result_processor(dialect, None)
    return processor(value) if processor else value


def register(
    session: Session, *, event_id: str, openid: str, answers: dict[str, str], attendance: str, capacity: int,
    now: datetime, notice_version: str | None = None, consent_at: datetime | None = None,
) -> Registration:
    """Register ``openid``: confirmed while seats remain (or online), else waitlisted at the end.

    Raises AlreadyRegistered when the follower already holds an active registration for the event.
    Everything but the deciding insert happens before the event lock, so that only the insert and the
    caller's commit run under it.
    """
    parameters = {
        "event_id": event_id, "openid": openid, "capacity": capacity, "online": attendance == ONLINE,
        "attendance": attendance, "checkin_code": _new_checkin_code(), "now": now,
        "notice_version": notice_version, "consent_at": consent_at,
        **{name: answers.get(name) for name in FIELD_COLUMNS},
    }
    if session.get_bind().dialect.name == "postgresql":
        registration = _lock_and_insert_placed(session, event_id, parameters)
    else:
        lock_event(session, event_id)
        registration = _insert_placed(session, parameters)
    if registration is None:
        raise AlreadyRegistered(active_registration(session, event_id, openid))
    return registration


def cancel(session: Session, registration: Registration, *, capacity: int, now: datetime) -> SeatChange:
    """Cancel a registration; a freed seat goes to the head of the waitlist at once."""
    lock_event(session, registration.event_id)
    session.refresh(registration)
    if registration.status == CANCELLED:
        return SeatChange(registration)
    registration.updated_at = now
    if registration.status == WAITLISTED:
        _leave_waitlist(session, registration, CANCELLED)
    else:
        registration.status = CANCELLED
        session.flush()
    return SeatChange(registration, _fill_free_seats(session, registration.event_id, capacity, now))


def change_attendance(
    session: Session, registration: Registration, attendance: str, *, capacity: int, now: datetime
) -> SeatChange:
    """Switch between on site and online: online frees a seat (or a waitlist place), on site needs one."""
    lock_event(session, registration.event_id)
    session.refresh(registration)
    if registration.attendance == attendance or registration.status == CANCELLED:
        return SeatChange(registration)
    registration.updated_at = now
    if registration.status == WAITLISTED:
        # Only on-site registrations wait, so this is a switch to online, which never waits.
        registration.attendance = attendance
        _leave_waitlist(session, registration, CONFIRMED)
    else:
        status, position = _placement(session, registration.event_id, attendance, capacity)
        registration.attendance, registration.status, registration.position = attendance, status, position
        session.flush()
    return SeatChange(registration, _fill_free_seats(session, registration.event_id, capacity, now))


def add_walk_in(
    session: Session, *, event_id: str, name: str, phone: str, capacity: int, now: datetime
) -> Registration | None:
    """Add someone at the door by name and phone, checked in at once; None (nobody added) when the room is full.

    They take a seat like anyone on site (so ``confirmed on site <= capacity`` still holds), but have no
    WeChat follower: the openid is a placeholder that no audience includes.
    """
    lock_event(session, event_id)
    if seats_taken(session, event_id) >= capacity:
        return None
    registration = Registration(
        event_id=event_id, openid=f"walk-in:{secrets.token_hex(8)}", name=name, phone=phone, attendance=ONSITE,
        status=CONFIRMED, checkin_code=_new_checkin_code(), created_at=now, updated_at=now, checked_in_at=now,
        walk_in=True,
    )
    session.add(registration)
    session.flush()
    return registration


def check_in(session: Session, registration: Registration, now: datetime) -> bool:
    """Mark a confirmed registration as arrived; True when it is (again) checked in, False otherwise."""
    if registration.status != CONFIRMED:
        return False
    if registration.checked_in_at is None:
        registration.checked_in_at = registration.updated_at = now
    return True


def undo_check_in(registration: Registration, now: datetime) -> None:
    """Take back a check-in made by mistake (the wrong row tapped at the door)."""
    if registration.checked_in_at is not None:
        registration.checked_in_at, registration.updated_at = None, now


def registration_by_code(session: Session, event_id: str, code: str) -> Registration | None:
    """The registration with check-in ``code`` (case-insensitive) for the event, if any."""
    return session.scalar(
        select(Registration).where(
            Registration.event_id == event_id, Registration.checkin_code == code.strip().upper()
        )
    )


def register_walk_in(
    session: Session, *, event_id: str, openid: str, capacity: int, now: datetime
) -> Registration | None:
    """Register an unannounced arrival on site, only while a seat is free (walk-ins never wait)."""
    lock_event(session, event_id)
    if seats_taken(session, event_id) >= capacity:
        return None
    return register(
        session, event_id=event_id, openid=openid, answers={}, attendance=ONSITE, capacity=capacity, now=now
    )
