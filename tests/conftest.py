"""Test harness: a real database (SQLite file, or PostgreSQL + Redis), the real app, signed XML.

``EVENTBOT_TEST_BACKEND=sqlite`` (default) or ``postgresql``. The PostgreSQL run creates its own
database for the session, so parallel runs never share tables, and uses a fresh Redis namespace per
test. When CI=true, an unreachable PostgreSQL or Redis fails the run instead of skipping it.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bot.app import create_app
from bot.devtools.fake_wechat import FakeWeChat, FakeWeChatRemote, FakeWeChatServer
from bot.devtools.simulator import WeChatSimulator
from bot.logs import LOG_CONFIG, JsonFormatter, PhoneNumberMask
from bot.settings import Settings, load_settings
from models import Base, BroadcastDraft, Campaign, Follower, FormState, InboundMessage, SignedPush
from models.clock import ManualClock
from models.db import create_db_engine, session_factory
from models.migrate import upgrade
from scheduler.reminders import Reminder
from scheduler.sender import build_sender
from tests.organizer_factories import ADMIN_TOKEN, AUTH, EVENT_ID

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOKEN = "test-token"
METRICS_TOKEN = "test-metrics-token"
METRICS_AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}
SHANGHAI = ZoneInfo("Asia/Shanghai")
# Six days before the shipped meetup (2023-03-26 14:00): registration open, reminders ahead.
BEFORE_EVENT = datetime(2023, 3, 20, 10, 0, tzinfo=SHANGHAI)

# Property-based tests: a few hundred examples in the normal suite, thousands with HYPOTHESIS_PROFILE=long.
# One app serves all examples of a test (its rows are compared before and after each), hence the fixtures.
_HYPOTHESIS_COMMON = {
    "deadline": None, "database": None, "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
hypothesis_settings.register_profile("default", max_examples=200, **_HYPOTHESIS_COMMON)
hypothesis_settings.register_profile("long", max_examples=5000, **_HYPOTHESIS_COMMON)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

BACKEND = os.environ.get("EVENTBOT_TEST_BACKEND", "sqlite")
POSTGRES_URL = os.environ.get("EVENTBOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("EVENTBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is unreachable ({error}); the {BACKEND} test run needs it"
    pytest.exit(message, returncode=3) if os.environ.get("CI") == "true" or BACKEND == "postgresql" else pytest.skip(message)


# What a log line must never hold: a mainland mobile number, a name the tests register with, a raw openid
# (the tests' openids all start with "o-"; logs carry only their hash).
_PHONE_IN_LOG = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_OPENID_IN_LOG = re.compile(r"(?<![\w./-])o-[\w-]+")
FIXTURE_NAMES = ("张三", "李四", "王五", "王小明", "王小丽", "李雷", "韩梅梅", "赵四", "欧阳娜娜", "甲一", "乙二", "丙三", "丁四")


@pytest.fixture(autouse=True)
def logs_hold_no_personal_data() -> Iterator[None]:
    """Every test: the lines the production log handler (JSON, phone mask) writes at INFO and above are
    scanned for phone numbers, names from the fixtures and raw openids; any found fails the test."""
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.addFilter(PhoneNumberMask())
    handler.setFormatter(JsonFormatter())
    # The production levels: the root's, and those LOG_CONFIG gives to chatty libraries.
    levels = {"": "INFO", **{name: config["level"] for name, config in LOG_CONFIG["loggers"].items()}}
    saved = {name: logging.getLogger(name).level for name in levels}
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    root = logging.getLogger()
    root.addHandler(handler)
    yield
    root.removeHandler(handler)
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)
    leaks = [
        line
        for line in output.getvalue().splitlines()
        if _PHONE_IN_LOG.search(line) or _OPENID_IN_LOG.search(line) or any(name in line for name in FIXTURE_NAMES)
    ]
    if leaks:
        pytest.fail("personal data in the log:\n" + "\n".join(leaks[:5]), pytrace=False)


@pytest.fixture(scope="session")
def database_template(tmp_path_factory) -> Iterator[str]:
    """A migrated database for the session: a SQLite file to copy, or a PostgreSQL database of its own."""
    if BACKEND == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.db"
        upgrade(f"sqlite:///{path}")
        yield str(path)
        return
    admin_url = make_url(POSTGRES_URL)
    name = f"eventbot_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # any driver error: the server is not there
        admin.dispose()
        _unavailable("PostgreSQL", error)
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database_url(database_template: str, tmp_path: Path) -> str:
    """A clean, migrated database for one test."""
    if BACKEND == "sqlite":
        path = tmp_path / "eventbot.db"
        shutil.copyfile(database_template, path)
        return f"sqlite:///{path}"
    engine = create_engine(database_template)
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return database_template


@pytest.fixture
def redis_url() -> str:
    """Redis for the production-path run; empty (no Redis) for the SQLite run."""
    if BACKEND == "sqlite":
        return ""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        _unavailable("Redis", error)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def make_settings(database_url: str, redis_url: str) -> Callable[..., Settings]:
    """Settings for the test database; keyword overrides as for ``load_settings``."""
    namespace = f"test-{uuid.uuid4().hex[:10]}"

    def build(**overrides) -> Settings:
        values = {
            "wechat_token": TOKEN,
            "database_url": database_url,
            "redis_url": redis_url,
            "redis_namespace": namespace,
            "config_path": REPO_ROOT / "config.toml",
            "admin_token": "",
            "metrics_token": METRICS_TOKEN,
            "admin_tokens_raw": "",
            "admin_openids_raw": "",
            "wechat_encoding_aes_key": "",
            "wechat_app_id": "",
            # Tests start the scheduler themselves, with a controllable clock.
            "run_scheduler": False,
        }
        values.update(overrides)
        return load_settings(**values)

    return build


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(BEFORE_EVENT)


@pytest.fixture
def make_app(clock: ManualClock) -> Iterator[Callable[..., FastAPI]]:
    """Build apps on the test's database; every engine is disposed at the end of the test."""
    apps: list[FastAPI] = []

    def build(settings: Settings, **kwargs) -> FastAPI:
        kwargs.setdefault("clock", clock)
        engine = create_db_engine(settings.database_url)
        app = create_app(settings, engine=engine, **kwargs)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.state.services.engine.dispose()


@pytest.fixture
def app(make_app, settings: Settings) -> FastAPI:
    return make_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def wechat(client: TestClient) -> WeChatSimulator:
    """A simulated WeChat server posting signed pushes to the app."""
    return WeChatSimulator(client, TOKEN)


@pytest.fixture
def admin_app(make_app, make_settings) -> FastAPI:
    """An app whose admin API takes ``ADMIN_TOKEN``."""
    return make_app(make_settings(admin_token=ADMIN_TOKEN))


@pytest.fixture
def admin_api(admin_app: FastAPI) -> Iterator[TestClient]:
    """A client of ``admin_app`` that sends the admin token with every request."""
    with TestClient(admin_app, headers=AUTH) as client:
        yield client


FAKE_APP_ID = "wx-fake-app"
FAKE_APP_SECRET = "fake-app-secret"


@pytest.fixture
def fake_wechat(clock: ManualClock) -> Iterator[FakeWeChatRemote]:
    """The fake WeChat API served over real HTTP on a free loopback port, its clock set to the test's."""
    with FakeWeChatServer(FakeWeChat(FAKE_APP_ID, FAKE_APP_SECRET)) as server:
        remote = FakeWeChatRemote(server.base_url)
        remote.set_now(clock.now())
        yield remote
        remote.close()


@pytest.fixture
def outbound_settings(make_settings, fake_wechat: FakeWeChatRemote) -> Settings:
    """Settings whose outbound messages go to the fake WeChat API."""
    return make_settings(
        wechat_app_id=FAKE_APP_ID, wechat_app_secret=FAKE_APP_SECRET, wechat_api_base_url=fake_wechat.base_url
    )


@pytest.fixture
def sender(outbound_settings: Settings, sessions, clock: ManualClock):
    """The outbox sender of one process, sending to the fake WeChat API."""
    return build_sender(outbound_settings, sessions, clock)


@pytest.fixture
def engines(settings: Settings) -> Iterator[Callable[[], Engine]]:
    """A fresh engine per simulated process, all disposed at the end."""
    made: list[Engine] = []

    def make() -> Engine:
        made.append(create_db_engine(settings.database_url))
        return made[-1]

    yield make
    for engine in made:
        engine.dispose()


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    """A session factory on the test's database, for arranging and inspecting rows directly."""
    engine = create_db_engine(database_url)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def day_before(settings: Settings) -> Reminder:
    """The shipped event's reminder one day before it starts."""
    return Reminder(settings.content.event_by_id(EVENT_ID), "1d")


def rows_written(app: FastAPI) -> int:
    """Rows that pushes leave behind (anything queued to be written behind included): 0 after a refusal."""
    app.state.services.activity.flush()
    with app.state.services.sessions() as session:
        return sum(
            session.scalar(select(func.count()).select_from(model))
            for model in (InboundMessage, Follower, FormState, SignedPush, BroadcastDraft, Campaign)
        )
