"""The ASGI application: the webhook, health endpoints, and the shared services they use."""

from __future__ import annotations

import gc
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from bot.admin import admin_api_router
from bot.admin.dashboard import mount_dashboard
from bot.admin.errors import chinese_input_errors
from bot.calendar import calendar_router
from bot.deps import AdminDep, MetricsDep
from bot.home import add_home_page
from bot.late_replies import LateReplySink, LedgerOnlySink, OutboxLateReplySink
from bot.push_gate import PushGate
from bot.rate_limit import FollowerRateLimit
from bot.responder import Responder
from bot.services import Services
from bot.settings import Settings
from bot.subscribe_page import subscribe_router
from bot.webhook import WebhookFirst, webhook_router
from bot.wechat import SafeModeCrypto
from handlers import ROUTERS
from handlers.dispatch import Dispatcher, Router
from models.activity import ActivityRecorder
from models.clock import Clock, clock_for
from models.commit_writes import CommitWrites
from models.db import create_db_engine, session_factory
from models.form_presence import FormPresence, RedisFormPresence, SqliteFormPresence
from models.form_store import DatabaseForms, FormStore
from models.ledger import DatabaseLedger, RedisLedger, ReplyLedger
from models.metrics import exposition
from models.push_bindings import PushBindings, side_pushes_file
from models.redis_guard import RedisGuard, redis_client
from scheduler.sender import build_sender, start_background_sender
from scheduler.wechat_client import build_client, outbound_configured
from scheduler.worker import start_worker_thread

# Handlers are short; the pool bounds how many run at once so a burst queues instead of exhausting threads.
# Few: a handler mostly waits on round trips, and each return from one waits for the GIL; every extra
# thread adds to those waits more than it saves in queueing (bench/RESULTS.md, items 20 and 26).
HANDLER_THREADS = 2


def build_message_state(
    settings: Settings, guard: RedisGuard | None, engine: Engine, sessions: sessionmaker[Session], clock: Clock
) -> tuple[ReplyLedger, FormStore, FormPresence | None]:
    """The reply ledger, the form store and the form presence check.

    Forms are always rows in the database. With Redis the ledger lives there (falling back to the
    database's while Redis is unreachable) and open-form markers let the content path skip the database;
    without it, the presence check reads a SQLite file directly, and is None (no content path) on an
    in-memory SQLite database, which no other connection can read, or on PostgreSQL, where a round trip
    per message is the cost the path avoids.
    """
    if guard is None:
        presence = SqliteFormPresence(engine) if SqliteFormPresence.can_read(engine) else None
        return DatabaseLedger(), DatabaseForms(sessions), presence
    markers = RedisFormPresence(guard, settings.redis_namespace, sessions, clock)
    ledger = RedisLedger(guard, settings.redis_namespace, CommitWrites(guard, sessions))
    return ledger, DatabaseForms(sessions, markers), markers


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    engine: Engine | None = None,
    late_replies: LateReplySink | None = None,
    routers: list[Router] | None = None,
    send_outbox: bool = False,
) -> FastAPI:
    """Build the app; tests pass their own clock, engine, sink or routers.

    With ``send_outbox`` (and the account's credentials) the outbox sender runs in a background thread
    for the app's lifetime; otherwise ``eventbot send`` (or a worker) sends.
    """
    engine = engine or create_db_engine(settings.database_url)
    sessions = session_factory(engine)
    clock = clock or clock_for(settings.now_override, settings.tz)
    executor = ThreadPoolExecutor(max_workers=HANDLER_THREADS, thread_name_prefix="handler")
    activity = ActivityRecorder(sessions)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # Everything built so far (modules, config, routers, ORM mappings) lives as long as the process:
        # moved out of the garbage collector's reach, a full collection no longer walks it (full
        # collections paused a loaded worker's event loop: bench/RESULTS.md, item 14).
        gc.freeze()
        stop_sender = (
            start_background_sender(build_sender(settings, sessions, clock))
            if send_outbox and outbound_configured(settings)
            else None
        )
        # Unless EVENTBOT_RUN_SCHEDULER=0 (serve --no-scheduler), this process competes to run the scheduler.
        stop_scheduler = start_worker_thread(settings, engine, clock, send_outbox=False) if settings.run_scheduler else None
        stop_activity = activity.start()
        if isinstance(presence, RedisFormPresence):
            # Trust the markers from the start (a restarted Redis has none); failing that, at first use.
            presence.rebuild()
        yield
        stop_activity()
        if stop_scheduler:
            stop_scheduler()
        if stop_sender:
            stop_sender()
        executor.shutdown(wait=True)

    # FastAPI's native OpenTelemetry looks up three global providers on every request only to find them
    # unconfigured: eventbot's observability is /metrics and the JSON log.
    # The OpenAPI schema maps every admin route: not published unless ADMIN_DOCS=1, and then behind the admin
    # API's own auth (every admin token, compared in constant time).
    app = FastAPI(
        title="eventbot", lifespan=lifespan, telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url=None, redoc_url=None, openapi_url=None,
    )
    if late_replies is None:
        late_replies = OutboxLateReplySink(sessions) if outbound_configured(settings) else LedgerOnlySink()
    redis_guard = RedisGuard(redis_client(settings.redis_url)) if settings.redis_url else None
    ledger, forms, presence = build_message_state(settings, redis_guard, engine, sessions, clock)
    app.state.services = Services(
        settings=settings,
        clock=clock,
        engine=engine,
        sessions=sessions,
        executor=executor,
        crypto=(
            SafeModeCrypto(settings.wechat_token, settings.wechat_encoding_aes_key, settings.wechat_app_id)
            if settings.aes_enabled
            else None
        ),
        late_replies=late_replies,
        activity=activity,
        forms=forms,
        responder=Responder(
            settings, clock, sessions, ledger, Dispatcher(ROUTERS if routers is None else routers),
            activity=activity, forms=forms, presence=presence,
        ),
        wechat=build_client(settings, sessions, clock) if outbound_configured(settings) else None,
        redis_guard=redis_guard,
        gate=PushGate(
            PushBindings(sessions, redis_guard, settings.redis_namespace, side_pushes_file(engine)),
            FollowerRateLimit(settings.content.rate_limit, redis_guard, settings.redis_namespace),
            presence, clock, executor,
        ),
    )
    app.add_middleware(WebhookFirst)
    app.add_exception_handler(RequestValidationError, chinese_input_errors)
    app.include_router(webhook_router)
    app.include_router(admin_api_router)
    app.include_router(calendar_router)
    app.include_router(subscribe_router)
    mount_dashboard(app)
    add_home_page(app, settings)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """Ready while the database answers (503 otherwise). Redis down is reported, still 200: the bot
        works without it (``degraded``), so the process stays in service."""
        redis_state = {} if redis_guard is None else {"redis": "ok" if redis_guard.ping() else "down"}
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as error:  # any driver error means "not ready"; the type varies by backend
            return JSONResponse(
                {"status": "unavailable", "database": "down", "detail": type(error).__name__, **redis_state},
                status_code=503,
            )
        status = "degraded" if redis_state.get("redis") == "down" else "ok"
        return JSONResponse({"status": status, "database": "ok", **redis_state})

    @app.get("/metrics", tags=["health"], dependencies=[MetricsDep])
    def metrics() -> Response:
        """Prometheus metrics, summed over every worker process; bearer ``METRICS_TOKEN``."""
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    if settings.admin_docs:
        @app.get("/openapi.json", include_in_schema=False, dependencies=[AdminDep])
        def openapi_schema() -> JSONResponse:
            """The OpenAPI schema of every route, for the organizers' tools (ADMIN_DOCS=1)."""
            return JSONResponse(app.openapi())

    return app
