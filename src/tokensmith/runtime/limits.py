"""Rate limits and brute-force lockouts, shared by every node through Redis or kept per node.

Rate limits are token buckets (``core/ratelimit.py`` explains the arithmetic). Lockouts count
failures per name (an account, a client, an address): from ``threshold`` failures within
``window`` on, every further failure locks the name for twice as long as the one before, from
``first_lock`` up to ``longest_lock``.

With ``TOKENSMITH_REDIS_URL`` set, both live in Redis, and each operation is one Lua script that
reads and writes atomically on Redis's own clock: concurrent nodes never race and never disagree
about the time. Without Redis, or while it is unreachable, the same state is kept in this
process, in bounded tables: limits then hold per node, never not at all. Losing Redis is logged
once per outage, reported through ``on_degraded`` (a metric), and retried after a pause, so an
outage adds no latency to requests.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tokensmith.core.ratelimit import RateLimiter

__all__ = ["REDIS_ERRORS", "UNLOCKABLE", "Limits", "LockoutPolicy", "account_name"]

log = logging.getLogger(__name__)

REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
# What an operator can unlock: lockouts by account, client and address; anomaly holds by client
# and API key (runtime/responses.py).
UNLOCKABLE = ("account", "client", "address", "key")
T = TypeVar("T")

# KEYS[1]: the bucket. ARGV: limit, period in ms. Returns 0 if a request may pass, else the wait in
# ms until it may.
_TAKE = """
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or limit
local at = tonumber(state[2]) or now
local rate = limit / period
tokens = math.min(limit, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens < 1 then
  wait = math.ceil((1 - tokens) / rate)
else
  tokens = tokens - 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], period)
return wait
"""

# KEYS[1]: failure count, KEYS[2]: lock. ARGV: threshold, window, first lock, longest lock (ms).
# Returns the lock it set, in ms (0: not locked).
_FAIL = """
local threshold = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local first = tonumber(ARGV[3])
local longest = tonumber(ARGV[4])
local failures = redis.call('INCR', KEYS[1])
if failures == 1 then redis.call('PEXPIRE', KEYS[1], window) end
if failures < threshold then return 0 end
local lock = math.min(longest, first * 2 ^ math.min(failures - threshold, 30))
redis.call('SET', KEYS[2], '1', 'PX', lock)
redis.call('PEXPIRE', KEYS[1], math.max(window, 2 * lock))
return lock
"""

# KEYS[1]: the lock. ARGV: its length in ms. Never shortens a longer lock already there.
_HOLD = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
"""


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    threshold: int  # failures within the window before the first lock
    window: float  # seconds
    first_lock: float  # seconds
    longest_lock: float  # seconds


@dataclass(slots=True)
class _Failures:
    count: int
    expires: float
    locked_until: float = 0.0


class Limits:
    def __init__(
        self,
        redis_url: str | None = None,
        *,
        prefix: str = "tokensmith:",
        retry_after_outage: float = 5.0,
        timeout: float = 0.25,
        max_local_entries: int = 100_000,
        on_degraded: Callable[[bool], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._buckets = RateLimiter(max_entries=max_local_entries, monotonic=monotonic)
        self._failures: OrderedDict[str, _Failures] = OrderedDict()
        self._max_local_entries = max_local_entries
        self._prefix = prefix
        self._retry_after_outage = retry_after_outage
        self._monotonic = monotonic
        self._down_until = 0.0
        self._degraded = False
        self.on_degraded = on_degraded
        self._redis: aioredis.Redis | None = None
        self._take_script: Any = None
        self._fail_script: Any = None
        self._hold_script: Any = None
        if redis_url:
            self._redis = aioredis.Redis.from_url(
                redis_url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry_on_timeout=False,
            )
            self._take_script = self._redis.register_script(_TAKE)
            self._fail_script = self._redis.register_script(_FAIL)
            self._hold_script = self._redis.register_script(_HOLD)

    @property
    def shared(self) -> bool:
        """True while the state is held in Redis (configured and reachable)."""
        return self._redis is not None and not self._degraded

    # -- rate limits -------------------------------------------------------------------------

    async def take(self, name: str, limit: int, period: float) -> int | None:
        """Spend one of ``limit`` requests per ``period`` seconds for ``name``.

        None if allowed; otherwise the whole seconds to wait, for ``Retry-After``.
        """
        key = f"{self._prefix}rl:{name}"
        wait_ms = await self._shared(
            lambda: self._take_script(keys=[key], args=[limit, int(period * 1000)])
        )
        if wait_ms is None:
            return self._buckets.take(name, limit, period)
        return None if int(wait_ms) <= 0 else _whole_seconds(int(wait_ms) / 1000)

    # -- lockouts ------------------------------------------------------------------------------

    async def locked(self, name: str) -> int | None:
        """The whole seconds ``name`` stays locked, or None."""
        key = f"{self._prefix}lock:{name}"
        redis = self._redis
        remaining = await self._shared(lambda: redis.pttl(key)) if redis is not None else None
        if remaining is not None:
            return _whole_seconds(int(remaining) / 1000) if int(remaining) > 0 else None
        entry = self._failures.get(name)
        left = entry.locked_until - self._monotonic() if entry is not None else 0.0
        return _whole_seconds(left) if left > 0 else None

    async def fail(self, name: str, policy: LockoutPolicy) -> int | None:
        """Count a failure for ``name``; the whole seconds it is now locked for, or None."""
        keys = [f"{self._prefix}fail:{name}", f"{self._prefix}lock:{name}"]
        args = [
            policy.threshold,
            int(policy.window * 1000),
            int(policy.first_lock * 1000),
            int(policy.longest_lock * 1000),
        ]
        lock_ms = await self._shared(lambda: self._fail_script(keys=keys, args=args))
        if lock_ms is not None:
            return _whole_seconds(int(lock_ms) / 1000) if int(lock_ms) > 0 else None
        return self._fail_locally(name, policy)

    async def hold(self, name: str, seconds: int) -> None:
        """Lock ``name`` for ``seconds`` (an automatic response), or longer if already locked."""
        key = f"{self._prefix}lock:{name}"
        done = await self._shared(lambda: self._hold_script(keys=[key], args=[seconds * 1000]))
        if done is not None:
            return
        entry = self._failures.get(name) or _Failures(0, 0.0)
        until = self._monotonic() + seconds
        entry.locked_until = max(entry.locked_until, until)
        entry.expires = max(entry.expires, until)
        self._failures[name] = entry
        self._failures.move_to_end(name)
        while len(self._failures) > self._max_local_entries:
            self._failures.popitem(last=False)

    async def clear(self, name: str) -> None:
        """Forget the failures and any lock of ``name`` (a success, or an operator's unlock)."""
        self._failures.pop(name, None)
        redis = self._redis
        if redis is not None:
            keys = (f"{self._prefix}fail:{name}", f"{self._prefix}lock:{name}")
            await self._shared(lambda: redis.delete(*keys))

    async def unlock(self, names: dict[str, str | None]) -> dict[str, str]:
        """An operator's unlock of the named ``account``, ``client``, ``address`` or ``key``
        (failures, lockouts and anomaly holds alike); what was cleared, by kind."""
        cleared = {}
        for kind, name in names.items():
            if kind not in UNLOCKABLE:
                raise ValueError(f"cannot unlock a {kind!r}")
            if name:
                key = account_name(name) if kind == "account" else name[:128]
                if key:
                    await self.clear(f"{kind}:{key}")
                    cleared[kind] = name
        return cleared

    async def ping(self) -> bool:
        """True if Redis is configured and answers now."""
        redis = self._redis
        return redis is not None and bool(await self._shared(lambda: redis.ping()))

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    # -- internals -----------------------------------------------------------------------------

    def _fail_locally(self, name: str, policy: LockoutPolicy) -> int | None:
        now = self._monotonic()
        entry = self._failures.get(name)
        if entry is None or entry.expires <= now:
            entry = _Failures(0, now + policy.window)
        entry.count += 1
        self._failures[name] = entry
        self._failures.move_to_end(name)
        while len(self._failures) > self._max_local_entries:
            self._failures.popitem(last=False)
        if entry.count < policy.threshold:
            return None
        lock = min(
            policy.longest_lock, policy.first_lock * 2 ** min(entry.count - policy.threshold, 30)
        )
        entry.locked_until = now + lock
        entry.expires = max(entry.expires, now + 2 * lock)
        return _whole_seconds(lock)

    async def _shared(self, operation: Callable[[], Awaitable[T]]) -> T | None:
        """The operation's result from Redis; None without Redis or while it is down."""
        if self._redis is None or self._monotonic() < self._down_until:
            return None
        try:
            result = await operation()
        except REDIS_ERRORS as exc:
            self._down_until = self._monotonic() + self._retry_after_outage
            if not self._degraded:
                self._degraded = True
                log.warning(
                    "Redis unreachable: rate limits and lockouts are per node until it returns",
                    extra={"error": type(exc).__name__},
                )
                if self.on_degraded is not None:
                    self.on_degraded(True)
            return None
        if self._degraded:
            self._degraded = False
            log.warning("Redis reachable again: rate limits and lockouts are shared")
            if self.on_degraded is not None:
                self.on_degraded(False)
        return result


def account_name(username: str) -> str | None:
    """How a typed username is counted: trimmed and case-folded, so "Alice " is "alice"."""
    return username.strip().casefold()[:128] or None


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))
