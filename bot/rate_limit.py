"""A token bucket per follower: a flood from one openid is answered once and then ignored, cheaply.

Shared by every process through Redis (one Lua script, on Redis's own clock), else, and while Redis is
unreachable, kept in this process's memory. Hand-written: the buckets must live in our Redis namespace
and fall back with our ``RedisGuard``, and a bucket also remembers whether the follower was told.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from models.content import RateLimitConfig
from models.redis_guard import RedisGuard

# In-process buckets kept at most; past it, the ones that have refilled completely are forgotten.
MAX_LOCAL_BUCKETS = 100_000


class Admission(enum.Enum):
    ALLOWED = 0
    NOTIFY = 1  # the first message over the limit: told once
    SILENT = 2  # later ones: answered ``success``, not handled


# KEYS[1] the bucket; ARGV rate (tokens/s), burst. Returns an Admission value.
_TAKE_TOKEN = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'told')
local tokens = math.min(burst, (tonumber(state[1]) or burst) + (now - (tonumber(state[2]) or now)) * rate)
local admission, told = 0, '0'
if tokens >= 1 then
  tokens = tokens - 1
elseif state[3] == '1' then
  admission, told = 2, '1'
else
  admission, told = 1, '1'
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now), 'told', told)
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return admission
"""


@dataclass
class _Bucket:
    tokens: float
    at: float
    told: bool = False


class FollowerRateLimit:
    """``admit_all(openids)``: whether each follower's message is handled, told off once, or ignored."""

    def __init__(self, limits: RateLimitConfig, guard: RedisGuard | None = None, namespace: str = "") -> None:
        self._rate = limits.per_minute / 60
        self._burst = limits.burst
        self._guard = guard
        self._prefix = f"{namespace}:rate:"
        self._local: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def admit_all(self, openids: Sequence[str]) -> list[Admission]:
        """Each follower's admission for one message, in order: one Redis round trip for them all."""
        if self._guard is not None and self._guard.available():
            # EVAL rather than EVALSHA: Redis caches the compiled script by its hash anyway, and a restarted
            # Redis (which forgets loaded scripts) needs no NOSCRIPT retry.
            commands = [("EVAL", _TAKE_TOKEN, 1, self._prefix + openid, self._rate, self._burst) for openid in openids]
            try:
                replies = self._guard.round_trip(commands)
            except redis.RedisError:
                pass  # the guard logged it; this process's own buckets meanwhile
            else:
                return [
                    self._admit_locally(openid) if isinstance(reply, redis.RedisError) else Admission(int(reply))
                    for openid, reply in zip(openids, replies)
                ]
        return [self._admit_locally(openid) for openid in openids]

    def _admit_locally(self, openid: str) -> Admission:
        now = time.monotonic()
        with self._lock:
            bucket = self._local.get(openid)
            if bucket is None:
                if len(self._local) >= MAX_LOCAL_BUCKETS:
                    self._forget_full_buckets(now)
                bucket = self._local[openid] = _Bucket(self._burst, now)
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._rate)
            bucket.at = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                bucket.told = False
                return Admission.ALLOWED
            admission = Admission.SILENT if bucket.told else Admission.NOTIFY
            bucket.told = True
            return admission

    def _forget_full_buckets(self, now: float) -> None:
        refill_seconds = self._burst / self._rate
        self._local = {openid: bucket for openid, bucket in self._local.items() if now - bucket.at < refill_seconds}
