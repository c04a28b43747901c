"""Redis as a cache and a coordinator that may go away: a client that fails fast, and a guard that remembers
the failure for a moment so every message does not wait on a dead server.

Every user of Redis (the reply ledger, the open-form markers, the rate limit) asks ``guard.available()``
first and falls back to the database or to the process's own memory when it says no. After a failure
Redis is skipped for ``RETRY_AFTER_SECONDS``, then tried again: it is used again without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

# Loopback Redis answers in well under a millisecond; a server that does not answer in this long is down
# as far as a 5 s reply budget is concerned.
SOCKET_TIMEOUT_SECONDS = 0.5
RETRY_AFTER_SECONDS = 1.0


def redis_client(url: str) -> redis.Redis:
    """A client that fails at once when Redis is down, instead of redis-py's default three retries with
    growing delays (seconds per command, on the event loop)."""
    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )


class RedisGuard:
    """Whether Redis is worth asking now. Thread-safe; one per process.

    ``on_recovery`` callbacks run (in the thread that noticed) when Redis answers again after a failure:
    whatever this process could not write meanwhile is repaired from the database by them.
    """

    def __init__(self, client: redis.Redis, *, retry_after: float = RETRY_AFTER_SECONDS) -> None:
        self.client = client
        self._retry_after = retry_after
        self._down_until: float | None = None
        self._lock = threading.Lock()
        self._recovery_callbacks: list[Callable[[], None]] = []
        self._connections = threading.local()

    def on_recovery(self, callback: Callable[[], None]) -> None:
        self._recovery_callbacks.append(callback)

    @property
    def down(self) -> bool:
        """Whether the last attempt failed (until an attempt succeeds)."""
        return self._down_until is not None

    def available(self) -> bool:
        """False while a recent failure says Redis is down; True again once it is worth a new try."""
        down_until = self._down_until
        return down_until is None or time.monotonic() >= down_until

    def failed(self, error: Exception) -> None:
        """Record a failed call: Redis is skipped for a moment. Logged once per outage."""
        with self._lock:
            first = self._down_until is None
            self._down_until = time.monotonic() + self._retry_after
        if first:
            logger.warning("Redis unreachable (%s); using the database and in-process state", type(error).__name__)

    def succeeded(self) -> None:
        """Record a successful call; after an outage, run the recovery callbacks once."""
        if self._down_until is None:
            return
        with self._lock:
            recovered, self._down_until = self._down_until is not None, None
        if recovered:
            logger.warning("Redis reachable again")
            for callback in self._recovery_callbacks:
                callback()

    def round_trip(self, commands: Sequence[tuple]) -> list:
        """The replies to ``commands``, sent together in one round trip on this thread's own connection; an
        error reply is returned as its ``ResponseError``. Raises ``redis.RedisError`` when Redis cannot be
        reached (recorded: ``available()`` then says no for a moment).

        Held rather than borrowed from the client's pool: on the webhook's hot path the pool, pipeline and
        retry layers cost more CPU than the round trip itself.
        """
        connection = getattr(self._connections, "redis", None)
        if connection is None:
            connection = self._connections.redis = self.client.connection_pool.make_connection()
        replies = []
        try:
            connection.send_packed_command(connection.pack_commands(commands))
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except redis.ResponseError as error:
                    replies.append(error)
        except redis.RedisError as error:
            connection.disconnect()
            self.failed(error)
            raise
        self.succeeded()
        return replies

    def ping(self) -> bool:
        """Ask Redis now (health checks), whatever the guard remembered; True when it answered."""
        try:
            self.client.ping()
        except redis.RedisError as error:
            self.failed(error)
            return False
        self.succeeded()
        return True
