"""Form-presence checks of pushes that arrive together are asked in one batch."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.form_checks import BatchedFormChecks
from models.form_presence import FormPresence


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


def check_together(checks: BatchedFormChecks, openids: list[str]) -> list[bool]:
    async def together():
        return await asyncio.gather(*(checks.may_be_open(openid) for openid in openids))

    return asyncio.run(together())


def test_pushes_checked_in_the_same_turn_share_one_batch(clock):
    presence = RecordingPresence({"o-in-form"})
    checks = BatchedFormChecks(presence, clock)

    answers = check_together(checks, ["o-a", "o-in-form", "o-b", "o-a"])

    assert answers == [False, True, False, False]
    assert presence.batches == [["o-a", "o-in-form", "o-b"]]


def test_later_turns_ask_again(clock):
    presence = RecordingPresence(set())
    checks = BatchedFormChecks(presence, clock)

    async def one_after_another():
        return [await checks.may_be_open("o-a"), await checks.may_be_open("o-b")]

    assert asyncio.run(one_after_another()) == [False, False]
    assert presence.batches == [["o-a"], ["o-b"]]


def test_a_failing_check_says_maybe_for_everyone_and_is_logged(clock, caplog):
    checks = BatchedFormChecks(BrokenPresence(), clock)
    with caplog.at_level(logging.ERROR, logger="bot.form_checks"):
        assert check_together(checks, ["o-a", "o-b"]) == [True, True]
    assert "form presence check failed" in caplog.text


@pytest.mark.parametrize("open_forms", [set(), {"o-a"}])
def test_the_batched_answer_is_the_single_answer(clock, open_forms):
    presence = RecordingPresence(open_forms)
    checks = BatchedFormChecks(presence, clock)
    assert check_together(checks, ["o-a"]) == [presence.may_be_open("o-a", clock.now())]
