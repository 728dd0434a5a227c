"""Rate limits and brute-force lockouts, shared by every node through Redis or kept per node.

Rate limits are token buckets (``core/ratelimit.py`` explains the arithmetic); lockouts are
``core/lockouts.py``'s: the policy, the names, and the table this node keeps.

With ``TOKENSMITH_REDIS_URL`` set, both live in Redis, and each operation is one Lua script that
reads and writes atomically on Redis's own clock: concurrent nodes never race and never disagree
about the time. Without Redis, or while it is unreachable, the same state is kept in this
process, in bounded tables: limits then hold per node, never not at all. Losing Redis (refused,
reset, timed out: ``redis_client.unavailable``) is logged once per outage, reported through
``on_degraded`` (a metric), and retried after a pause: an outage costs the requests that find
it at most a connect and a read (each within the timeout), and those in the pause nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import redis.asyncio as aioredis

from tokensmith.adapters.redis_client import (
    REDIS_ERRORS,
    forget_connections,
    never_sent,
    open_redis,
    unavailable,
)
from tokensmith.core.addresses import address_bucket
from tokensmith.core.lockouts import (
    UNLOCKABLE,
    LockoutPolicy,
    LockoutTable,
    Reservation,
    account_name,
    whole_seconds,
)
from tokensmith.core.ratelimit import RateLimiter

__all__ = ["REDIS_ERRORS", "Limits"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_KINDS = ("fail", "lock")  # the two keys of a lockout name in Redis

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
# Returns the lock it set, in ms (0: not locked). A lock's value is the failure count that set it
# (a hold's is 'hold', which no refund lifts: see _REFUND).
_FAIL = """
local threshold = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local first = tonumber(ARGV[3])
local longest = tonumber(ARGV[4])
local failures = redis.call('INCR', KEYS[1])
if failures == 1 then redis.call('PEXPIRE', KEYS[1], window) end
if failures < threshold then return 0 end
local lock = math.min(longest, first * 2 ^ math.min(failures - threshold, 30))
redis.call('SET', KEYS[2], tostring(failures), 'PX', lock)
redis.call('PEXPIRE', KEYS[1], math.max(window, 2 * lock))
return lock
"""

# Check-and-count in one step, for any number of names (an account and its address, say).
# KEYS: failure count and lock of each name. ARGV[1]: 1 to count a failure, 0 to check only; then
# threshold, window, first and longest lock (ms) of each name. If any name is locked, nothing is
# counted and the reply is {longest wait in ms}. Otherwise, when counting, every name counts a
# failure, and the reply is {0, lock set for name 1 in ms, ...}. Counting before the secret is
# checked is a reservation (see Limits.reserve): once the attempt that reaches the threshold is
# counted the lock stands, so parallel attempts never pass it.
_ATTEMPT = """
local names = #KEYS / 2
local wait = 0
for i = 1, names do
  wait = math.max(wait, redis.call('PTTL', KEYS[2 * i]))
end
if wait > 0 then return {wait} end
local reply = {0}
if ARGV[1] ~= '1' then return reply end
for i = 1, names do
  local fail, lock = KEYS[2 * i - 1], KEYS[2 * i]
  local threshold = tonumber(ARGV[4 * i - 2])
  local window = tonumber(ARGV[4 * i - 1])
  local first = tonumber(ARGV[4 * i])
  local longest = tonumber(ARGV[4 * i + 1])
  local failures = redis.call('INCR', fail)
  if failures == 1 then redis.call('PEXPIRE', fail, window) end
  local ms = 0
  if failures >= threshold then
    ms = math.min(longest, first * 2 ^ math.min(failures - threshold, 30))
    redis.call('SET', lock, tostring(failures), 'PX', ms)
    redis.call('PEXPIRE', fail, math.max(window, 2 * ms))
  end
  reply[i + 1] = ms
end
return reply
"""

# Give back reservations that turned out not to be failures. KEYS: failure count and lock of each
# name; ARGV: each name's threshold. A lock that failures set goes with the refund only if the
# count falls below the threshold again: the failures left still hold a lock they earned, and
# holds (value 'hold') are never touched.
_REFUND = """
for i = 1, #KEYS / 2 do
  local fail, lock = KEYS[2 * i - 1], KEYS[2 * i]
  local failures = tonumber(redis.call('GET', fail) or '0')
  if failures > 0 then
    failures = redis.call('DECR', fail)
    local held = redis.call('GET', lock)
    if held and held ~= 'hold' and failures < tonumber(ARGV[i]) then redis.call('DEL', lock) end
  end
end
return 1
"""

# KEYS[1]: the lock. ARGV: its length in ms. Never shortens a longer lock already there. Its value
# is no failure count, so no refund ever removes it.
_HOLD = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], 'hold', 'PX', ARGV[1])
end
return 1
"""


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
        # This node's own state: all of it without Redis, the fallback while Redis is away.
        self._buckets = RateLimiter(max_entries=max_local_entries, monotonic=monotonic)
        self._lockouts = LockoutTable(max_entries=max_local_entries, monotonic=monotonic)
        self._prefix = prefix
        self._retry_after_outage = retry_after_outage
        self._monotonic = monotonic
        self._down_until = 0.0
        self._degraded = False
        self._outages = 0  # failures seen so far, to tell which successes came after the last
        self.on_degraded = on_degraded
        self._redis: aioredis.Redis | None = None
        self._take_script: Any = None
        self._fail_script: Any = None
        self._hold_script: Any = None
        self._attempt_script: Any = None
        self._refund_script: Any = None
        if redis_url:
            self._redis = open_redis(redis_url, timeout)  # each call bounded by ``timeout``
            self._take_script = self._redis.register_script(_TAKE)
            self._fail_script = self._redis.register_script(_FAIL)
            self._hold_script = self._redis.register_script(_HOLD)
            self._attempt_script = self._redis.register_script(_ATTEMPT)
            self._refund_script = self._redis.register_script(_REFUND)

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
        return None if int(wait_ms) <= 0 else whole_seconds(int(wait_ms) / 1000)

    # -- lockouts ------------------------------------------------------------------------------

    async def locked(self, name: str) -> int | None:
        """The whole seconds ``name`` stays locked, or None."""
        key = f"{self._prefix}lock:{name}"
        redis = self._redis
        remaining = await self._shared(lambda: redis.pttl(key)) if redis is not None else None
        if remaining is not None:
            return whole_seconds(int(remaining) / 1000) if int(remaining) > 0 else None
        left = self._lockouts.lock_left(name)
        return whole_seconds(left) if left > 0 else None

    async def reserve(self, names: Sequence[tuple[str, LockoutPolicy]]) -> Reservation:
        """Check every name's lock and count this attempt as a failure of each, in one step.

        For a check that costs real work (a password hash): call it before, and ``refund`` the
        names if the password was right (or never checked). However many attempts arrive at
        once, no more than the threshold get past it (SECURITY 57). If a name is locked, nothing
        is counted.
        """
        return await self._attempt(names, count=True)

    async def judge(self, names: Sequence[tuple[str, LockoutPolicy]], failed: bool) -> Reservation:
        """After a cheap check (a keyed hash): in one step, refuse if any name is locked, else
        count the failure if it was one. Right or wrong, no answer but 429 leaves once a name
        is locked, and no more than the threshold of wrong guesses are ever answered as such,
        however many run at once; parallel right ones are never held back by each other."""
        return await self._attempt(names, count=failed)

    async def _attempt(
        self, names: Sequence[tuple[str, LockoutPolicy]], count: bool
    ) -> Reservation:
        keys = [f"{self._prefix}{kind}:{name}" for name, _ in names for kind in _KINDS]
        args = [int(count)] + [value for _, policy in names for value in _policy_ms(policy)]
        # This node counts first, before anything is sent: a script whose reply is lost (a
        # timeout) may still have counted in Redis, and the attempts that then fall back to
        # these tables must find it counted here too, or the threshold is passed twice over.
        local = self._lockouts.attempt(names, count)
        lost = False

        async def call() -> Any:
            nonlocal lost
            try:
                return await self._attempt_script(keys=keys, args=args)
            except REDIS_ERRORS as exc:
                lost = not _before_sending(exc)
                raise

        reply = await self._shared(call)
        if reply is None:
            if lost and count and local.wait is None:
                # Sent, and no answer: Redis may have admitted other attempts in another order
                # than this node did, so this node's verdict cannot stand in for the lost one.
                # The attempt fails closed, as a short wait; it stays counted here.
                return Reservation(1, shared=False)
            return replace(local, shared=False)
        counted_here = local.counted_here
        if int(reply[0]) > 0:
            return Reservation(whole_seconds(int(reply[0]) / 1000), counted_here=counted_here)
        locking = tuple(name for (name, _), ms in zip(names, reply[1:], strict=False) if int(ms))
        return Reservation(None, locking, counted_here=counted_here)

    async def refund(
        self,
        names: Sequence[tuple[str, LockoutPolicy]],
        *,
        shared: bool = True,
        counted_here: bool = True,
    ) -> None:
        """Take back reserved attempts that were no failure, and a lock only they made.
        ``shared`` and ``counted_here``: where the reservation was counted (``Reservation``)."""
        if shared:
            keys = [f"{self._prefix}{kind}:{name}" for name, _ in names for kind in _KINDS]
            thresholds = [policy.threshold for _, policy in names]
            await self._shared(lambda: self._refund_script(keys=keys, args=thresholds))
        if counted_here:
            self._lockouts.refund(names)  # the count itself, or its copy of Redis's

    async def fail(self, name: str, policy: LockoutPolicy) -> int | None:
        """Count a failure for ``name``; the whole seconds it is now locked for, or None."""
        keys = [f"{self._prefix}fail:{name}", f"{self._prefix}lock:{name}"]
        args = _policy_ms(policy)
        lock = self._lockouts.fail(name, policy)  # counted here first, as in _attempt
        lock_ms = await self._shared(lambda: self._fail_script(keys=keys, args=args))
        if lock_ms is not None:
            return whole_seconds(int(lock_ms) / 1000) if int(lock_ms) > 0 else None
        return whole_seconds(lock) if lock else None

    async def hold(self, name: str, seconds: int) -> None:
        """Lock ``name`` for ``seconds`` (an automatic response), or longer if already locked."""
        key = f"{self._prefix}lock:{name}"
        self._lockouts.hold(name, seconds)  # kept here too, so a Redis outage never lifts it early
        await self._shared(lambda: self._hold_script(keys=[key], args=[seconds * 1000]))

    async def clear(self, name: str) -> None:
        """Forget the failures and any lock of ``name`` (a success, or an operator's unlock)."""
        self._lockouts.clear(name)
        redis = self._redis
        if redis is not None:
            keys = (f"{self._prefix}fail:{name}", f"{self._prefix}lock:{name}")
            await self._shared(lambda: redis.delete(*keys))

    async def clear_family(self, name: str) -> None:
        """``clear`` the name and every name under it (a client's lockouts at every address)."""
        await self.clear(name)
        below = f"{name}@"
        self._lockouts.clear_below(below)
        redis = self._redis
        if redis is not None:
            patterns = [f"{_glob_escape(self._prefix + kind + ':' + below)}*" for kind in _KINDS]
            await self._shared(lambda: _delete_matching(redis, patterns))

    async def unlock(self, names: dict[str, str | None]) -> dict[str, str]:
        """An operator's unlock of the named ``account``, ``client``, ``address`` or ``key``
        (failures, lockouts and anomaly holds alike); what was cleared, by kind. An account's
        and an address's locks on typing device user codes go with their password locks."""
        cleared = {}
        for kind, name in names.items():
            if kind not in UNLOCKABLE:
                raise ValueError(f"cannot unlock a {kind!r}")
            if name:
                for lock in _locks_of(kind, name):
                    # A client is locked out per address it was attacked from (client_name).
                    clear = self.clear_family if kind == "client" else self.clear
                    await clear(lock)
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

    async def _shared(self, operation: Callable[[], Awaitable[T]]) -> T | None:
        """The operation's result from Redis; None without Redis or while it is down."""
        if self._redis is None or self._monotonic() < self._down_until:
            return None
        outages = self._outages
        try:
            result = await operation()
        except REDIS_ERRORS as exc:
            if not unavailable(exc):
                raise  # a fault of ours, not an outage: hidden by no fallback
            self._outages += 1
            self._down_until = self._monotonic() + self._retry_after_outage
            forget_connections(self._redis)  # what else was open may be dead too
            if not self._degraded:
                self._degraded = True
                log.warning(
                    "Redis unreachable: rate limits and lockouts are per node until it returns",
                    extra={"error": type(exc).__name__},
                )
                if self.on_degraded is not None:
                    self.on_degraded(True)
            return None
        # Only a call begun after the last failure says Redis is back: one that was under way
        # when a reset hit its neighbours may still succeed, mid-pause.
        if self._degraded and outages == self._outages:
            self._degraded = False
            log.warning("Redis reachable again: rate limits and lockouts are shared")
            if self.on_degraded is not None:
                self.on_degraded(False)
        return result


def _before_sending(exc: BaseException) -> bool:
    """A failure to connect, or a write refused on a closed connection: the script never ran."""
    return never_sent(exc)


def _policy_ms(policy: LockoutPolicy) -> list[int]:
    return [
        policy.threshold,
        int(policy.window * 1000),
        int(policy.first_lock * 1000),
        int(policy.longest_lock * 1000),
    ]


def _glob_escape(text: str) -> str:
    """``text`` matched literally in a Redis SCAN pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


async def _delete_matching(redis: aioredis.Redis, patterns: list[str]) -> int:
    deleted = 0
    for pattern in patterns:
        async for key in redis.scan_iter(match=pattern, count=500):
            deleted += int(await redis.delete(key))
    return deleted


def _locks_of(kind: str, name: str) -> list[str]:
    """The lockout names an operator's unlock of ``kind`` ``name`` lifts."""
    if kind == "account":
        key = account_name(name)
        # Code entry at /device is locked per user under the same name (web/device.py).
        return [f"account:{key}", f"user_code:{key}"] if key else []
    if kind == "address":
        key = address_bucket(name)  # counted by its /64 if IPv6 (client_name too)
        return [f"address:{key}", f"user_code_address:{key}"] if key else []
    key = name[:128]
    return [f"{kind}:{key}"] if key else []
