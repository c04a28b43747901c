"""Routers, filters and the dispatcher, in the style of aiogram 3.

A topic module owns one ``Router`` and registers handlers on it with filters. The dispatcher asks the
routers in order; the first handler whose filters all pass wins. A filter returns ``False`` to decline,
``True`` to accept, or a dict of values it extracted, which the handler can ask for by name. A handler
names only the arguments it needs (``message``, ``event``, ``now``, ``session`` …); the dispatcher
injects them. Nothing here knows about HTTP.

Whether a handler needs the database is known when it is registered: it names ``session`` or
``follower``, or one of its filters is marked ``needs_database``. Dispatching without the database (the
content path) stops at the first such handler that could match and says so, instead of running it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from handlers.replies import Reply

logger = logging.getLogger(__name__)

FilterResult = bool | dict[str, Any]
Filter = Callable[["Context"], FilterResult]
HandlerCallback = Callable[..., Reply | None]


# What a handler may name that needs the message's database transaction.
DATABASE_VALUES = frozenset({"session", "follower"})


def needs_database(check: Filter) -> Filter:
    """Mark a filter that reads the database (the follower's row, their form): without the database the
    dispatcher stops before it rather than guessing."""
    check.needs_database = True
    return check


def _reads_database(check: Filter) -> bool:
    return getattr(check, "needs_database", False)


class Context:
    """What a handler may ask for, by name. Expensive values are computed on first use and kept."""

    def __init__(self, values: dict[str, Any], lazy: dict[str, Callable[[Context], Any]] | None = None) -> None:
        self._values = dict(values)
        self._lazy = dict(lazy or {})

    @property
    def has_database(self) -> bool:
        return "session" in self._values

    def get(self, name: str) -> Any:
        if name not in self._values:
            if name not in self._lazy:
                raise LookupError(name)
            self._values[name] = self._lazy.pop(name)(self)
        return self._values[name]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.get(name)
        except LookupError:
            raise AttributeError(name) from None

    def remember(self, name: str, compute: Callable[[Context], Any]) -> Any:
        """The value ``name``, computed by ``compute`` on first use: filters that need the same row share
        one query per message."""
        if name not in self._values:
            self._values[name] = compute(self)
        return self._values[name]

    def computed(self, name: str) -> bool:
        """Whether ``name`` has been asked for (or given) already: a lazy value not yet computed is not."""
        return name in self._values

    def provides(self, name: str) -> bool:
        return name in self._values or name in self._lazy


# What ``HandlerSpec.match`` returns when it cannot decide without the database.
NEEDS_DATABASE: dict[str, Any] = {}


@dataclass(frozen=True)
class HandlerSpec:
    callback: HandlerCallback
    filters: tuple[Filter, ...]
    parameters: tuple[str, ...]
    topic: str

    @property
    def needs_database(self) -> bool:
        return bool(DATABASE_VALUES.intersection(self.parameters)) or any(map(_reads_database, self.filters))

    def match(self, context: Context) -> dict[str, Any] | None:
        """The values the filters extracted, None when a filter declines, or ``NEEDS_DATABASE`` (checked
        with ``is``) when the context has no database and this handler may match."""
        extracted: dict[str, Any] = {}
        for check in self.filters:
            if _reads_database(check) and not context.has_database:
                return NEEDS_DATABASE
            result = check(context)
            if result is False or result is None:
                return None
            if isinstance(result, dict):
                extracted.update(result)
        if not context.has_database and DATABASE_VALUES.intersection(self.parameters):
            return NEEDS_DATABASE
        return extracted

    def call(self, context: Context, extracted: dict[str, Any]) -> Reply | None:
        arguments = {}
        for name in self.parameters:
            if name in extracted:
                arguments[name] = extracted[name]
            elif context.provides(name):
                arguments[name] = context.get(name)
            else:
                raise TypeError(f"handler {self.callback.__qualname__} asks for {name!r}, which nothing provides")
        return self.callback(**arguments)


class Router:
    """A topic's handlers, in registration order."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.handlers: list[HandlerSpec] = []

    def handler(self, *filters: Filter, topic: str | None = None) -> Callable[[HandlerCallback], HandlerCallback]:
        """Register the decorated function for messages that pass every filter."""

        def register(callback: HandlerCallback) -> HandlerCallback:
            parameters = tuple(inspect.signature(callback).parameters)
            self.handlers.append(HandlerSpec(callback, filters, parameters, topic or self.topic))
            return callback

        return register


@dataclass(frozen=True)
class Outcome:
    reply: Reply | None
    topic: str


class Dispatcher:
    """Routes a message context to the first matching handler of the routers, in order."""

    def __init__(self, routers: Iterable[Router]) -> None:
        self.routers = list(routers)
        topics = [router.topic for router in self.routers]
        duplicates = {topic for topic in topics if topics.count(topic) > 1}
        if duplicates:
            raise ValueError(f"routers included twice: {sorted(duplicates)}")

    def dispatch(self, context: Context) -> Outcome | None:
        """Run the first matching handler; ``Outcome(None, "unhandled")`` when none matches, None when
        the context has no database and the first handler that may match needs it."""
        for router in self.routers:
            for spec in router.handlers:
                extracted = spec.match(context)
                if extracted is NEEDS_DATABASE:
                    return None
                if extracted is not None:
                    return Outcome(spec.call(context, extracted), spec.topic)
        return Outcome(None, "unhandled")
