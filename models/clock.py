"""The one clock seam: everything that asks "what time is it" for event logic goes through a Clock.

Signature freshness is not event logic and always uses the real clock (see ``bot.wechat``).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, tzinfo
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The real time, in the bot's timezone."""

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz

    def now(self) -> datetime:
        return datetime.now(self.tz)


class ShiftedClock:
    """Real time moved so that it reads ``start`` at creation, then runs on (``EVENTBOT_NOW``, ``--now``).

    Running on, rather than standing still, lets a trial started before the event see reminders fire.
    """

    def __init__(self, start: datetime, tz: tzinfo) -> None:
        self.tz = tz
        start = start if start.tzinfo else start.replace(tzinfo=tz)
        self._shift = start - datetime.now(tz)

    def now(self) -> datetime:
        return (datetime.now(self.tz) + self._shift).astimezone(self.tz)


class ManualClock:
    """A clock that moves only when told to: for tests and simulations."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now += delta


def clock_for(now_override: datetime | None, tz: tzinfo) -> Clock:
    """The clock a process uses: shifted when an override is given, else the system clock."""
    return ShiftedClock(now_override, tz) if now_override else SystemClock(tz)
