"""Signed (timestamp, nonce) pairs bound to their first body: in the database, in Redis, and in the
database again when Redis cannot be reached."""

import socket

import pytest
from sqlalchemy import create_engine

from models.db import session_factory
from models.push_bindings import PushBindings, SqliteSidePushes, body_digest
from models.redis_guard import RedisGuard, redis_client


def unreachable_redis() -> RedisGuard:
    """The guard of a client of a port nothing listens on (bound, then closed at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return RedisGuard(redis_client(f"redis://127.0.0.1:{port}/0"))


def bind(bindings: PushBindings, pair: str, body: bytes) -> bool:
    """Whether ``pair`` may carry ``body``, asked as the webhook asks: memory or Redis, then the database."""
    wanted = {pair: body_digest(body)}
    bound = bindings.bound_without_transaction(wanted)
    if pair not in bound:
        bound = bindings.bind_in_database(wanted)
    return bound[pair] == wanted[pair]


@pytest.fixture(params=["database", "side-file", "redis", "redis-down"])
def process_bindings(request, sessions, redis_url, make_settings, tmp_path):
    """Builds the bindings of one process; each call is another process sharing the same stores."""
    client, side_file = None, None
    if request.param == "side-file":
        side_file = lambda: SqliteSidePushes(tmp_path / "eventbot.db.signed-pushes")  # noqa: E731
    if request.param == "redis-down":
        client = unreachable_redis()
    elif request.param == "redis":
        if not redis_url:
            pytest.skip("Redis runs with the PostgreSQL backend")
        client = RedisGuard(redis_client(redis_url))
    namespace = make_settings().redis_namespace
    return lambda: PushBindings(sessions, client, namespace, side_file() if side_file else None)


@pytest.fixture
def bindings(process_bindings):
    return process_bindings()


def test_a_pair_accepts_its_first_body_again_and_nothing_else(bindings):
    assert bind(bindings, "1700000000|42", b"<xml>first</xml>")
    assert bind(bindings, "1700000000|42", b"<xml>first</xml>")
    assert not bind(bindings, "1700000000|42", b"<xml>other</xml>")
    assert bind(bindings, "1700000000|43", b"<xml>other</xml>")


def test_another_process_sees_the_binding(process_bindings):
    bind(process_bindings(), "1700000000|44", b"<xml>first</xml>")
    assert not bind(process_bindings(), "1700000000|44", b"<xml>other</xml>")


def test_many_pairs_are_bound_in_one_database_transaction(sessions):
    bind(PushBindings(sessions, None, "t"), "1700000000|50", b"<xml>taken</xml>")
    wanted = {f"1700000000|{nonce}": body_digest(b"<xml>new</xml>") for nonce in (50, 51, 52)}
    bound = PushBindings(sessions, None, "t").bind_in_database(wanted)  # another process: no memory of pair 50
    assert bound == wanted | {"1700000000|50": body_digest(b"<xml>taken</xml>")}


def test_with_no_store_reachable_a_push_is_accepted_unbound(caplog):
    """Redis and the database both down: WeChat's pushes are still answered (the outage is logged)."""
    nowhere = session_factory(create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 1}))
    assert bind(PushBindings(nowhere, unreachable_redis(), "t"), "1700000000|45", b"<xml/>")
    assert "accepting unbound" in caplog.text


def test_the_side_file_keeps_bindings_out_of_the_database(sessions, tmp_path):
    side = PushBindings(sessions, None, "t", SqliteSidePushes(tmp_path / "side"))
    assert bind(side, "1700000000|60", b"<xml>first</xml>")
    assert PushBindings(sessions, None, "t").bind_in_database({"1700000000|60": "another"}) == {
        "1700000000|60": "another"
    }
