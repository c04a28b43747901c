"""Signed (timestamp, nonce) pairs bound to their first body: in the database, in Redis, and in the
database again when Redis cannot be reached."""

import socket

import pytest
from sqlalchemy import create_engine

from models.db import session_factory
from models.push_bindings import PushBindings
from models.redis_guard import RedisGuard, redis_client


def unreachable_redis() -> RedisGuard:
    """The guard of a client of a port nothing listens on (bound, then closed at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return RedisGuard(redis_client(f"redis://127.0.0.1:{port}/0"))


@pytest.fixture(params=["database", "redis", "redis-down"])
def process_bindings(request, sessions, redis_url, make_settings):
    """Builds the bindings of one process; each call is another process sharing the same stores."""
    client = None
    if request.param == "redis-down":
        client = unreachable_redis()
    elif request.param == "redis":
        if not redis_url:
            pytest.skip("Redis runs with the PostgreSQL backend")
        client = RedisGuard(redis_client(redis_url))
    namespace = make_settings().redis_namespace
    return lambda: PushBindings(sessions, client, namespace)


@pytest.fixture
def bindings(process_bindings):
    return process_bindings()


def test_a_pair_accepts_its_first_body_again_and_nothing_else(bindings):
    assert bindings.bind("1700000000", "42", b"<xml>first</xml>")
    assert bindings.bind("1700000000", "42", b"<xml>first</xml>")
    assert not bindings.bind("1700000000", "42", b"<xml>other</xml>")
    assert bindings.bind("1700000000", "43", b"<xml>other</xml>")


def test_another_process_sees_the_binding(process_bindings):
    process_bindings().bind("1700000000", "44", b"<xml>first</xml>")
    assert not process_bindings().bind("1700000000", "44", b"<xml>other</xml>")


def test_with_no_store_reachable_a_push_is_accepted_unbound(caplog):
    """Redis and the database both down: WeChat's pushes are still answered (the outage is logged)."""
    nowhere = session_factory(create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 1}))
    assert PushBindings(nowhere, unreachable_redis(), "t").bind("1700000000", "45", b"<xml/>")
    assert "accepting unbound" in caplog.text
