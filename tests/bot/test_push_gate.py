"""The push gate: pushes of one turn share their round trips; a replay asks nothing else and spends nothing."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.push_gate import Push, PushGate
from bot.rate_limit import Admission, FollowerRateLimit
from models.content import RateLimitConfig
from models.form_presence import FormPresence
from models.push_bindings import PushBindings
from models.redis_guard import RedisGuard, redis_client


class RecordingPresence(FormPresence):
    """A presence that knows some open forms and records each batch it was asked."""

    def __init__(self, open_forms: set[str]) -> None:
        self.open_forms = open_forms
        self.batches: list[list[str]] = []

    def maybe_open_among(self, openids, now):
        self.batches.append(list(openids))
        return self.open_forms & set(openids)


class BrokenPresence(FormPresence):
    def maybe_open_among(self, openids, now):
        raise RuntimeError("presence store down")


class CountingGuard(RedisGuard):
    """A real Redis guard that counts its round trips."""

    round_trips = 0

    def round_trip(self, commands):
        self.round_trips += 1
        return super().round_trip(commands)


@pytest.fixture
def guard(redis_url):
    return CountingGuard(redis_client(redis_url)) if redis_url else None


@pytest.fixture
def make_gate(sessions, guard, clock, make_settings):
    namespace = make_settings().redis_namespace
    executor = ThreadPoolExecutor(2)

    def build(presence: FormPresence | None = None, *, burst: int = 5) -> PushGate:
        limits = RateLimitConfig(burst=burst, per_minute=1)
        return PushGate(
            PushBindings(sessions, guard, namespace), FollowerRateLimit(limits, guard, namespace), presence, clock,
            executor,
        )

    yield build
    executor.shutdown()


def check_together(gate: PushGate, pushes: list[Push]):
    async def together():
        return await asyncio.gather(*(gate.check(push) for push in pushes))

    return asyncio.run(together())


def asking(openid: str, nonce: str, body: bytes = b"<xml>q</xml>") -> Push:
    return Push(openid, pair=f"1700000000|{nonce}", body=body, limited=True, wants_presence=True)


def test_pushes_of_one_turn_share_one_presence_batch(make_gate):
    presence = RecordingPresence({"o-in-form"})
    gate = make_gate(presence)

    verdicts = check_together(gate, [asking("o-a", "1"), asking("o-in-form", "2"), asking("o-b", "3"), asking("o-a", "4")])

    assert [verdict.maybe_in_form for verdict in verdicts] == [False, True, False, False]
    assert presence.batches == [["o-a", "o-in-form", "o-b"]]
    assert all(verdict.bound and verdict.admission is Admission.ALLOWED for verdict in verdicts)


def test_with_redis_a_turn_costs_one_round_trip_per_question(make_gate, guard):
    if guard is None:
        pytest.skip("Redis runs with the PostgreSQL backend")
    gate = make_gate(None)
    check_together(gate, [asking(f"o-{index}", f"r{index}") for index in range(20)])
    assert guard.round_trips == 2  # the bindings, then the rate limits (no presence without markers)


def test_later_turns_ask_again(make_gate):
    presence = RecordingPresence(set())
    gate = make_gate(presence)

    async def one_after_another():
        return [await gate.check(asking("o-a", "5")), await gate.check(asking("o-b", "6"))]

    assert [verdict.maybe_in_form for verdict in asyncio.run(one_after_another())] == [False, False]
    assert presence.batches == [["o-a"], ["o-b"]]


def test_a_replay_with_another_body_is_refused_and_spends_no_token(make_gate):
    presence = RecordingPresence(set())
    gate = make_gate(presence, burst=1)
    (first,) = check_together(gate, [asking("o-victim", "7", b"<xml>first</xml>")])
    replays = check_together(gate, [asking("o-victim", "7", b"<xml>forged</xml>") for _ in range(3)])
    (retry,) = check_together(gate, [asking("o-victim", "7", b"<xml>first</xml>")])

    assert first.bound and first.admission is Admission.ALLOWED
    assert not any(replay.bound for replay in replays)
    assert presence.batches == [["o-victim"], ["o-victim"]]  # the replays asked nothing
    # The follower's one token went on the first push; the replays took none, so the retry is the first
    # over the limit (told once), not a silent one.
    assert retry.bound and retry.admission is Admission.NOTIFY


def test_a_push_with_its_own_signature_is_not_bound(make_gate):
    gate = make_gate(RecordingPresence(set()))
    verdicts = check_together(gate, [Push("o-aes", body=b"<xml>one</xml>"), Push("o-aes", body=b"<xml>two</xml>")])
    assert all(verdict.bound for verdict in verdicts)


def test_a_failing_presence_says_maybe_for_everyone_and_is_logged(make_gate, caplog):
    gate = make_gate(BrokenPresence())
    with caplog.at_level(logging.ERROR, logger="bot.push_gate"):
        verdicts = check_together(gate, [asking("o-a", "8"), asking("o-b", "9")])
    assert [verdict.maybe_in_form for verdict in verdicts] == [True, True]
    assert "form presence check failed" in caplog.text


def test_without_a_presence_everyone_may_be_in_a_form(make_gate):
    (verdict,) = check_together(make_gate(None), [asking("o-a", "10")])
    assert verdict.maybe_in_form
