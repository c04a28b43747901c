"""The outbox sender: claims pending deliveries, sends them through WeChat, records what happened.

Each delivery goes pending → claimed → sending → sent | failed | unknown (or straight to unreachable):

1. **claim** a batch (one transaction, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so several senders share
   the work without overlap; SQLite serialises it with ``BEGIN IMMEDIATE``): choose every row's channel
   (``BatchRouter``: one query for the batch's followers, one for their customer-service quota), mark the
   rows ``claimed`` with this run's ``attempt_id``. Nothing has left yet. The next batch is claimed in a
   thread of its own while the current one's calls go.
2. **sending**, committed just before the calls are handed to the worker threads, for as many rows as
   there are threads free to call at once (at most ``[delivery] concurrency``): from here on WeChat may
   have those messages.
3. **outcome**: as calls finish, the next rows are marked ``sending`` for the threads they freed (once a
   quarter of the threads is free), while what became of the finished calls is committed beside them
   (in the claiming thread), all that finished meanwhile at once: sent with msgid, failed with
   errcode/errmsg, back to pending for a transient error (bounded backoff) or an account-wide pause.

Crash recovery, when a sender died at any instant (``recover``, run at start and on every poll, for
rows older than ``stale_after`` so a live peer's rows are left alone):

- a ``claimed`` row goes back to ``pending``: step 2 is committed before every call, so a row still
  ``claimed`` provably never left;
- a ``sending`` row becomes ``unknown`` and is **not** resent. Customer-service and template messages
  carry no idempotency key at WeChat, so there is no way to ask whether the call arrived; resending could
  deliver twice, and "at most once" is the promise. The admin report counts these rows for a human.

Marking rows ``sending`` a chunk at a time rather than one commit per call keeps that rule: every row is
committed ``sending`` before its call can start, so a crash never resends. The unknown window barely
widens: a chunk is never larger than the threads free to take it at once, so a row waits between its
commit and its call only for a thread to pick it up, never behind another call; at most ``concurrency``
rows per sender can be ``unknown`` without their call having left. A worker that sees an account-wide
pause, or the sender's ``stop``, before calling does not call, and its row returns to ``pending``; so do
the claimed rows, so a sender stopped mid-campaign leaves nothing for recovery.

The same reasoning applies to a call that ends without a complete answer (read timeout, dropped
connection): the row becomes ``unknown`` rather than being retried.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import Connection, Update, bindparam, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.clock import Clock
from models.metrics import DELIVERIES
from models.outbox import (
    CLAIMED,
    PENDING,
    SENDING,
    UNKNOWN,
    UNREACHABLE,
    Campaign,
    Delivery,
    SenderState,
    account_pause,
    pause_account,
)
from scheduler.attempts import CallResult, Job, call_wechat, outcome_values
from scheduler.channels import BatchRouter
from scheduler.settings import SchedulerSettings
from scheduler.wechat_client import (
    CallError,
    EventbotWeChatClient,
    Outcome,
    build_client,
    classify,
)

logger = logging.getLogger(__name__)

# A row claimed longer ago than this belongs to a sender that died: calls time out long before.
DEFAULT_STALE_AFTER = timedelta(minutes=5)
# A batch holds this many rows per sender thread; the next one is claimed when half of one is left, so
# the calls never wait for a claim, and a sender holds at most 1.5 batches that peers cannot take.
BATCH_ROWS_PER_THREAD = 16
# Rows are marked sending for the freed threads once this share of the threads is free (or as many as
# there are rows left), rather than as each call ends: with a commit per call or two, those commits were
# the sender's main work (py-spy), and the freed threads waited for each. The others call meanwhile.
MIN_CHUNK_SHARE = 0.25
DELIVERY_ROWS = Delivery.__table__
# How often an idle sender looks for due rows: the delay before a new campaign starts to go out.
POLL_SECONDS = 0.5


class Sender:
    """Sends the outbox with ``[delivery] concurrency`` calls at a time; tests drive ``run_once``."""

    def __init__(
        self,
        settings: SchedulerSettings,
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
        self.batch_size = self.concurrency * BATCH_ROWS_PER_THREAD
        self.min_chunk = max(int(self.concurrency * MIN_CHUNK_SHARE), 1)
        self.app_id = settings.wechat_app_id
        self.run_id = uuid.uuid4().hex
        self._pause_seen = threading.Event()
        # The sending marks and outcomes: Core statements on the table (the ORM's bulk machinery cost more
        # time than the database here), built once rather than per commit (py-spy: coercions, cache keys),
        # on Core connections of the sessions' engine (an ORM session per commit cost as much again).
        self._engine = sessions.kw["bind"]
        this_run = DELIVERY_ROWS.c.attempt_id == self.run_id
        ids = DELIVERY_ROWS.c.id.in_(bindparam("ids", expanding=True))
        claimed = update(DELIVERY_ROWS).where(this_run, DELIVERY_ROWS.c.status == CLAIMED, ids)
        self._mark_sending = claimed.values(
            status=SENDING,
            claimed_at=bindparam("now", type_=DELIVERY_ROWS.c.claimed_at.type),
            attempts=DELIVERY_ROWS.c.attempts + 1,
        ).returning(DELIVERY_ROWS.c.id)
        self._release = claimed.values(status=PENDING, attempt_id=None)
        sending = update(DELIVERY_ROWS).where(this_run, DELIVERY_ROWS.c.status == SENDING)
        self._sending_row = sending.where(DELIVERY_ROWS.c.id == bindparam("delivery_id"))
        self._sending_rows = sending.where(ids)
        self._outcome_statements: dict[tuple[tuple[str, ...], bool], Update] = {}
        # A claim reads only the columns it needs (the router reads ``openid`` and ``text``), and marks rows
        # with a statement per channel.
        self._claimed_columns = [DELIVERY_ROWS.c[name] for name in ("id", "campaign_id", "openid", "text", "attempts")]
        claim_time = bindparam("now", type_=DELIVERY_ROWS.c.claimed_at.type)
        self._claim_rows = (
            update(DELIVERY_ROWS)
            .where(ids)
            .values(status=CLAIMED, channel=bindparam("new_channel"), claimed_at=claim_time, attempt_id=self.run_id)
        )
        self._unreachable_row = (
            update(DELIVERY_ROWS)
            .where(DELIVERY_ROWS.c.id == bindparam("delivery_id"))
            .values(status=UNREACHABLE, errmsg=bindparam("reason"), claimed_at=claim_time, finished_at=claim_time, attempt_id=self.run_id)
        )

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
        # Seen before the commit: a call queued on this worker thread must not go out meanwhile.
        self._pause_seen.set()
        with self.sessions.begin() as session:
            pause_account(session, self.app_id, error.errcode, error.errmsg, self.clock.now())
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

    def run_once(self, stop: threading.Event | None = None) -> int:
        """Claim due deliveries and send them until none are due or ``stop`` is set; the number handled.

        The next batch is claimed while the current one's calls go, so the threads never wait for a claim.
        Once ``stop`` is set no further call starts, and the rows not called go back to pending.
        """
        jobs, handled = self._claim(resuming=True)
        if jobs:
            handled += len(jobs) + self._send(jobs, stop or threading.Event())
        return handled

    def run_until_idle(self) -> None:
        """Send until nothing is due now (or the account is paused)."""
        self.recover()
        while self.run_once():
            pass

    def run_forever(self, stop: threading.Event, poll_seconds: float = POLL_SECONDS) -> None:
        """The background loop of ``eventbot send`` and of the app: poll, recover, send, until ``stop``."""
        logger.info("outbox sender started", extra={"run_id": self.run_id})
        while not stop.is_set():
            try:
                self.recover()
                busy = self.run_once(stop)
            except Exception:  # one place for the loop's errors: logged, then the loop goes on
                logger.exception("outbox sender iteration failed")
                busy = 0
            if not busy:
                stop.wait(poll_seconds)

    # --- steps ----------------------------------------------------------------------------------
    def _claim(self, *, resuming: bool = False) -> tuple[list[Job], int]:
        """Claim a batch: the jobs to send and the number of rows found unreachable."""
        now = self.clock.now()
        jobs: list[Job] = []
        with self.sessions.begin() as session:
            if account_pause(session, self.app_id) is not None:
                return [], 0
            if resuming:
                # Resumed, possibly by another process (`eventbot send --resume`): this run may send again.
                # Only a run's first claim clears it: a claim made beside the calls could otherwise undo
                # a pause a call has just seen but not yet committed.
                self._pause_seen.clear()
            rows = session.execute(
                select(*self._claimed_columns)
                .where(Delivery.status == PENDING, or_(Delivery.not_before.is_(None), Delivery.not_before <= now))
                .order_by(Delivery.id)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return [], 0
            campaigns = {
                campaign.id: campaign
                for campaign in session.scalars(select(Campaign).where(Campaign.id.in_({row.campaign_id for row in rows})))
            }
            router = BatchRouter(session, self.settings, now, (row.openid for row in rows))
            by_channel: dict[str, list[int]] = defaultdict(list)
            unreachable_rows = []
            for row in rows:
                route = router.route(campaigns[row.campaign_id], row)
                if route.channel is None:
                    unreachable_rows.append({"delivery_id": row.id, "reason": route.reason[:255], "now": now})
                    DELIVERIES.labels(outcome=UNREACHABLE, errcode="none").inc()
                    continue
                by_channel[route.channel].append(row.id)
                jobs.append(Job(row.id, row.openid, route, row.attempts + 1))
            # A statement per channel and one for the unreachable rows, rather than an ORM flush per row.
            for channel, ids in by_channel.items():
                session.execute(self._claim_rows, {"ids": ids, "new_channel": channel, "now": now})
            if unreachable_rows:
                session.execute(self._unreachable_row, unreachable_rows)
            unreachable = len(unreachable_rows)
        return jobs, unreachable

    def _send(self, jobs: list[Job], stop: threading.Event) -> int:
        """Send ``jobs`` and the batches claimed meanwhile; the number of further rows those batches held.

        As calls finish, the next rows are marked sending for the threads they freed (``_start``); the
        finished calls are recorded and the next batch is claimed in a thread of their own, one at a time,
        so this loop waits on no database work but the sending marks. It sleeps until a call or a claim
        finishes. After an account-wide pause or ``stop`` no further call starts.
        """
        claimed = deque(jobs)
        finished: queue.SimpleQueue[Future] = queue.SimpleQueue()  # calls and batch claims, as they end
        next_batch: Future[tuple[list[Job], int]] | None = None
        recording: Future[None] | None = None
        more_due = True
        handled = in_flight = 0
        results: list[CallResult] = []
        with (
            self._marks_connection() as marks,
            ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="sender") as pool,
            # Claims and outcome records, beside the calls: on PostgreSQL their round trips overlap the
            # sending marks' rather than adding to them.
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="sender-db") as background,
        ):
            while True:
                halted = stop.is_set() or self._pause_seen.is_set()
                if next_batch is not None and next_batch.done():
                    batch, unreachable = next_batch.result()
                    next_batch = None
                    claimed.extend(batch)
                    handled += len(batch) + unreachable
                    more_due = bool(batch or unreachable)
                if next_batch is None and more_due and not halted and len(claimed) < self.batch_size // 2:
                    next_batch = background.submit(self._claim)
                    next_batch.add_done_callback(finished.put)
                free = self.concurrency - in_flight
                if halted:
                    unsent, chunk = list(claimed), []
                    claimed.clear()
                elif free >= min(self.min_chunk, len(claimed)):
                    unsent, chunk = [], [claimed.popleft() for _ in range(min(free, len(claimed)))]
                else:
                    unsent = chunk = []
                for job in self._start(chunk, unsent, marks):
                    pool.submit(self._attempt, job, stop).add_done_callback(finished.put)
                    in_flight += 1
                # One record at a time: the results that finish while one is written go in the next.
                if results and (recording is None or recording.done()):
                    if recording is not None:
                        recording.result()  # a failed record ends the run; its rows stay sending
                    recording, results = background.submit(self._record, results), []
                if not (in_flight or claimed or next_batch):
                    if recording is not None:
                        recording.result()
                    if results:
                        self._record(results)
                    return handled
                ended = [finished.get()]
                while not finished.empty():
                    ended.append(finished.get())
                for future in ended:
                    if future is not next_batch:
                        results.append(future.result())
                        in_flight -= 1

    @contextmanager
    def _marks_connection(self) -> Iterator[Connection | None]:
        """The connection that one run's sending marks go through; None: a transaction of its own each.

        On PostgreSQL, one connection in autocommit: a mark is a single UPDATE, atomic and committed by
        itself, so it is one round trip instead of four (the pool's ping, BEGIN, UPDATE, COMMIT), which the
        loop waited on while the threads it freed idled (py-spy). On SQLite each mark stays a transaction:
        the process's writer turn (``models.db``) passes on only when a connection is checked in.
        """
        if self._engine.dialect.name != "postgresql":
            yield None
            return
        with self._engine.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def _mark_transaction(self, marks: Connection | None) -> Iterator[Connection]:
        if marks is None:
            with self._engine.begin() as connection:
                yield connection
        else:
            with marks.begin():  # in autocommit: no BEGIN or COMMIT goes to the database
                yield marks

    def _start(self, chunk: list[Job], unsent: list[Job], marks: Connection | None) -> list[Job]:
        """Commit ``chunk`` as sending and ``unsent`` back to pending; the jobs whose calls may start now.

        Only rows still this run's and claimed move (recovery may have taken one). The two lists are
        never both given (unsent rows are put back only once nothing more starts), so on an autocommit
        connection each is still one atomic statement.
        """
        if not (chunk or unsent):
            return []
        with self._mark_transaction(marks) as connection:
            if unsent:
                connection.execute(self._release, {"ids": [job.delivery_id for job in unsent]})
            if not chunk:
                return []
            started = set(
                connection.scalars(
                    self._mark_sending, {"ids": [job.delivery_id for job in chunk], "now": self.clock.now()}
                )
            )
        return [job for job in chunk if job.delivery_id in started]

    def _record(self, results: list[CallResult]) -> None:
        """Record how ``results``' calls ended, in one commit; only rows still this run's and sending move.

        Rows that end the same way (every customer-service message sent, say) are one statement; the
        others (a template message's own msgid) one executemany per set of changed columns.
        """
        now = self.clock.now()
        rows_by_change: dict[tuple, list[int]] = defaultdict(list)
        counted: Counter[tuple[str, str]] = Counter()
        for result in results:
            values, outcome = outcome_values(result, now)
            rows_by_change[tuple(sorted(values.items()))].append(result.job.delivery_id)
            if outcome is not None:
                counted[outcome] += 1
        single_rows: dict[tuple[str, ...], list[dict]] = defaultdict(list)
        with self._engine.begin() as connection:
            for change, delivery_ids in rows_by_change.items():
                columns = tuple(column for column, _ in change)
                # Bind names differ from the columns': SQLAlchemy reserves those for the SET clause.
                new_values = {f"new_{column}": value for column, value in change}
                if len(delivery_ids) > 1:
                    connection.execute(self._outcome_statement(columns, one_row=False), {"ids": delivery_ids, **new_values})
                else:
                    single_rows[columns].append({"delivery_id": delivery_ids[0], **new_values})
            for columns, parameters in single_rows.items():
                connection.execute(self._outcome_statement(columns, one_row=True), parameters)
        for (outcome, errcode), count in counted.items():
            DELIVERIES.labels(outcome=outcome, errcode=errcode).inc(count)

    def _outcome_statement(self, columns: tuple[str, ...], *, one_row: bool) -> Update:
        """The update that sets ``columns`` of one sending row of this run (or of several), built once."""
        statement = self._outcome_statements.get((columns, one_row))
        if statement is None:
            rows = self._sending_row if one_row else self._sending_rows
            statement = self._outcome_statements[columns, one_row] = rows.values(
                {column: bindparam(f"new_{column}", type_=DELIVERY_ROWS.c[column].type) for column in columns}
            )
        return statement

    def _attempt(self, job: Job, stop: threading.Event) -> CallResult:
        """Make ``job``'s call (in a worker thread, no database work but an account-wide pause)."""
        if stop.is_set() or self._pause_seen.is_set():
            return CallResult(job, called=False)
        try:
            result = call_wechat(self.client, job)
        except Exception as error:  # classify maps every call error; anything else re-raises from there
            failure = classify(error)
            if failure.outcome is Outcome.ACCOUNT:
                self._pause(failure)
            return CallResult(job, error=failure)
        msgid = (result.get("msgid") or result.get("msg_id")) if isinstance(result, dict) else None
        return CallResult(job, msgid=str(msgid) if msgid else None)

def start_background_sender(sender: Sender) -> Callable[[], None]:
    """Run ``sender`` in a daemon thread; returns the function that stops it and waits."""
    stop = threading.Event()
    thread = threading.Thread(target=sender.run_forever, args=(stop,), name="outbox-sender", daemon=True)
    thread.start()

    def shutdown() -> None:
        stop.set()
        thread.join(timeout=30)

    return shutdown



def build_sender(settings: SchedulerSettings, sessions: sessionmaker[Session], clock: Clock, **options) -> Sender:
    """A sender for these settings, with the shared-token WeChat client."""
    return Sender(settings, sessions, build_client(settings, sessions, clock), clock, **options)
