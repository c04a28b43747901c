"""Waiting for what another thread or process does: the suite's one polling loop."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
INTERVAL_SECONDS = 0.05


def wait_until(condition: Callable[[], T], *, timeout: float = 30.0, what: str) -> T:
    """Call ``condition`` until it returns something truthy, and return that.

    Fails after ``timeout`` seconds with a message naming ``what`` was awaited. An exception raised by
    ``condition`` (say, an assertion that a process is still alive) ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout:g} s")
        time.sleep(INTERVAL_SECONDS)
