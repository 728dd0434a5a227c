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

So that an outage never lifts a lock early, each node's tables also keep what Redis said of a
lockout name: every reply carries the name's shared failure count and lock, and every lock,
refund and unlock is published on ``<prefix>lockouts`` as it is made, which ``listen`` mirrors.
A node cut off from Redis refuses a name locked anywhere for the rest of its lock, and counts on
from the shared count.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
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
_FIRST_PAUSE, _LONGEST_PAUSE = 0.1, 5.0  # before the lock events' listener subscribes again

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

# Lock events, published by the scripts below in the same atomic step that sets or lifts a lock, so
# every node learns of every lock as it is set (Limits.listen). One message per event:
# "<event> <node> <lock ms> <failures> <failures' ms> <name>", the name last, as it may hold spaces.
# The numbers are the name's state after the event. Events: "lock" (set or lengthened), "refund"
# (a failure taken back), "lift" (a refund took the lock back too), "clear" (an operator's unlock
# or a success: failures and locks alike), "below" (clear every name under the prefix given).
# Names are what the keys already hold (a typed username, a client id, an address), never a secret.
_TELL = """
local function tell(channel, node, event, name, fail, lock)
  local lock_ms = math.max(0, redis.call('PTTL', lock))
  local failures = tonumber(redis.call('GET', fail) or '0') or 0
  local failures_ms = math.max(0, redis.call('PTTL', fail))
  redis.call('PUBLISH', channel,
    table.concat({event, node, lock_ms, failures, failures_ms, name}, ' '))
end
"""

# KEYS[1]: failure count, KEYS[2]: lock. ARGV: threshold, window, first lock, longest lock (ms),
# channel, node, name. Returns the lock it set in ms (0: not locked), then the lock's ms left,
# the failure count and its ms left (for this node to mirror). A lock's value is the failure
# count that set it (a hold's is 'hold', which no refund lifts: see _REFUND).
_FAIL = (
    _TELL
    + """
local threshold = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local first = tonumber(ARGV[3])
local longest = tonumber(ARGV[4])
local failures = redis.call('INCR', KEYS[1])
if failures == 1 then redis.call('PEXPIRE', KEYS[1], window) end
local lock = 0
if failures >= threshold then
  lock = math.min(longest, first * 2 ^ math.min(failures - threshold, 30))
  redis.call('SET', KEYS[2], tostring(failures), 'PX', lock)
  redis.call('PEXPIRE', KEYS[1], math.max(window, 2 * lock))
  tell(ARGV[5], ARGV[6], 'lock', ARGV[7], KEYS[1], KEYS[2])
end
return {
  lock,
  math.max(0, redis.call('PTTL', KEYS[2])),
  tonumber(redis.call('GET', KEYS[1]) or '0') or 0,
  math.max(0, redis.call('PTTL', KEYS[1])),
}
"""
)

# Check-and-count in one step, for any number of names (an account and its address, say).
# KEYS: failure count and lock of each name. ARGV: 1 to count a failure, 0 to check only; the
# channel and this node (for _TELL); then name, threshold, window, first and longest lock (ms) of
# each name. If any name is locked, nothing is counted and the reply starts with the longest wait
# in ms; otherwise, when counting, every name counts a failure, and the reply starts with 0. Then,
# for each name, the lock set by this attempt in ms (if it waited: the lock's ms left), the
# failure count and its ms left. Counting before the secret is checked is a reservation (see
# Limits.reserve): once the attempt that reaches the threshold is counted the lock stands, so
# parallel attempts never pass it.
_ATTEMPT = (
    _TELL
    + """
local names = #KEYS / 2
local wait = 0
for i = 1, names do
  wait = math.max(wait, redis.call('PTTL', KEYS[2 * i]))
end
local counting = wait <= 0 and ARGV[1] == '1'
local reply = {wait}
for i = 1, names do
  local fail, lock = KEYS[2 * i - 1], KEYS[2 * i]
  local at = 4 + 5 * (i - 1)
  local ms = 0
  if counting then
    local threshold = tonumber(ARGV[at + 1])
    local window = tonumber(ARGV[at + 2])
    local first = tonumber(ARGV[at + 3])
    local longest = tonumber(ARGV[at + 4])
    local failures = redis.call('INCR', fail)
    if failures == 1 then redis.call('PEXPIRE', fail, window) end
    if failures >= threshold then
      ms = math.min(longest, first * 2 ^ math.min(failures - threshold, 30))
      redis.call('SET', lock, tostring(failures), 'PX', ms)
      redis.call('PEXPIRE', fail, math.max(window, 2 * ms))
      tell(ARGV[2], ARGV[3], 'lock', ARGV[at], fail, lock)
    end
  elseif wait > 0 then
    ms = math.max(0, redis.call('PTTL', lock))
  end
  reply[#reply + 1] = ms
  reply[#reply + 1] = tonumber(redis.call('GET', fail) or '0') or 0
  reply[#reply + 1] = math.max(0, redis.call('PTTL', fail))
end
return reply
"""
)

# Give back reservations that turned out not to be failures. KEYS: failure count and lock of each
# name; ARGV: the channel, this node, then each name and its threshold. A lock that failures set
# goes with the refund only if the count falls below the threshold again: the failures left still
# hold a lock they earned, and holds (value 'hold') are never touched. Every node is told.
_REFUND = (
    _TELL
    + """
for i = 1, #KEYS / 2 do
  local fail, lock = KEYS[2 * i - 1], KEYS[2 * i]
  local name, threshold = ARGV[2 * i + 1], tonumber(ARGV[2 * i + 2])
  local failures = tonumber(redis.call('GET', fail) or '0')
  if failures > 0 then
    failures = redis.call('DECR', fail)
    local held = redis.call('GET', lock)
    local event = 'refund'
    if held and held ~= 'hold' and failures < threshold then
      redis.call('DEL', lock)
      event = 'lift'
    end
    tell(ARGV[1], ARGV[2], event, name, fail, lock)
  end
end
return 1
"""
)

# KEYS[1]: failure count, KEYS[2]: the lock. ARGV: its length in ms, channel, node, name. Never
# shortens a longer lock already there. Its value is no failure count, so no refund removes it.
_HOLD = (
    _TELL
    + """
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], 'hold', 'PX', ARGV[1])
  tell(ARGV[2], ARGV[3], 'lock', ARGV[4], KEYS[1], KEYS[2])
end
return 1
"""
)

# KEYS[1]: failure count, KEYS[2]: the lock. ARGV: channel, node, name. Forgets both, and tells
# every node to forget them too.
_CLEAR = (
    _TELL
    + """
redis.call('DEL', KEYS[1], KEYS[2])
tell(ARGV[1], ARGV[2], 'clear', ARGV[3], KEYS[1], KEYS[2])
return 1
"""
)


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
        heartbeat: float = 1.0,
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
        self._clear_script: Any = None
        # Lock events: this node's id in them (its own are not mirrored twice), and the listener.
        self._channel = f"{prefix}lockouts"
        self._node = secrets.token_hex(8)
        self._heartbeat = heartbeat
        self._listening = False
        self._deaf = False  # the listener lost Redis: logged once until it hears again
        if redis_url:
            self._redis = open_redis(redis_url, timeout)  # each call bounded by ``timeout``
            self._take_script = self._redis.register_script(_TAKE)
            self._fail_script = self._redis.register_script(_FAIL)
            self._hold_script = self._redis.register_script(_HOLD)
            self._attempt_script = self._redis.register_script(_ATTEMPT)
            self._refund_script = self._redis.register_script(_REFUND)
            self._clear_script = self._redis.register_script(_CLEAR)

    @property
    def shared(self) -> bool:
        """True while the state is held in Redis (configured and reachable)."""
        return self._redis is not None and not self._degraded

    @property
    def listening(self) -> bool:
        """True while this node is subscribed to the other nodes' lock events."""
        return self._listening

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
            self._lockouts.mirror_lock(name, max(0, int(remaining)) / 1000)
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
        args: list[str | int] = [int(count), self._channel, self._node]
        for name, policy in names:
            args += [name, *_policy_ms(policy)]
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
        wait_ms = int(reply[0])
        locking = []
        for i, (name, _) in enumerate(names):
            lock_ms, failures, failures_ms = (int(value) for value in reply[1 + 3 * i : 4 + 3 * i])
            set_here = count and wait_ms <= 0 and lock_ms > 0
            self._mirror(name, failures, failures_ms, lock_ms, set_here=set_here)
            if set_here:
                locking.append(name)
        if wait_ms > 0:
            return Reservation(whole_seconds(wait_ms / 1000), counted_here=counted_here)
        return Reservation(None, tuple(locking), counted_here=counted_here)

    async def refund(
        self,
        names: Sequence[tuple[str, LockoutPolicy]],
        *,
        shared: bool = True,
        counted_here: bool = True,
    ) -> None:
        """Take back reserved attempts that were no failure, and a lock only they made.
        ``shared`` and ``counted_here``: where the reservation was counted (``Reservation``).
        A lock mirrored from other nodes is never lifted here: only Redis's word lifts it."""
        if shared:
            keys = [f"{self._prefix}{kind}:{name}" for name, _ in names for kind in _KINDS]
            args: list[str | int] = [self._channel, self._node]
            for name, policy in names:
                args += [name, policy.threshold]
            await self._shared(lambda: self._refund_script(keys=keys, args=args))
        if counted_here:
            self._lockouts.refund(names)  # the count itself, or its copy of Redis's

    async def fail(self, name: str, policy: LockoutPolicy) -> int | None:
        """Count a failure for ``name``; the whole seconds it is now locked for, or None."""
        keys = [f"{self._prefix}fail:{name}", f"{self._prefix}lock:{name}"]
        args = [*_policy_ms(policy), self._channel, self._node, name]
        lock = self._lockouts.fail(name, policy)  # counted here first, as in _attempt
        reply = await self._shared(lambda: self._fail_script(keys=keys, args=args))
        if reply is None:
            return whole_seconds(lock) if lock else None
        lock_ms, lock_left, failures, failures_ms = (int(value) for value in reply)
        if lock_ms > 0:
            self._mirror(name, failures, failures_ms, lock_ms, set_here=True)
            return whole_seconds(lock_ms / 1000)
        self._mirror(name, failures, failures_ms, lock_left)
        return None

    async def hold(self, name: str, seconds: int) -> None:
        """Lock ``name`` for ``seconds`` (an automatic response), or longer if already locked."""
        keys = [f"{self._prefix}fail:{name}", f"{self._prefix}lock:{name}"]
        args = [seconds * 1000, self._channel, self._node, name]
        self._lockouts.hold(name, seconds)  # kept here too, so a Redis outage never lifts it early
        await self._shared(lambda: self._hold_script(keys=keys, args=args))

    async def clear(self, name: str) -> None:
        """Forget the failures and any lock of ``name`` (a success, or an operator's unlock), on
        every node: Redis tells the others. While Redis is away only this node forgets; the
        others keep what they mirrored until it runs out."""
        self._lockouts.clear(name)
        if self._redis is not None:
            keys = [f"{self._prefix}fail:{name}", f"{self._prefix}lock:{name}"]
            args = [self._channel, self._node, name]
            await self._shared(lambda: self._clear_script(keys=keys, args=args))

    async def clear_family(self, name: str) -> None:
        """``clear`` the name and every name under it (a client's lockouts at every address)."""
        await self.clear(name)
        below = f"{name}@"
        self._lockouts.clear_below(below)
        redis = self._redis
        if redis is not None:
            patterns = [f"{_glob_escape(self._prefix + kind + ':' + below)}*" for kind in _KINDS]
            await self._shared(lambda: _delete_matching(redis, patterns))
            event = _event("below", self._node, below)
            await self._shared(lambda: redis.publish(self._channel, event))

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

    async def listen(self) -> None:
        """Mirror every other node's lock events into this node's table, until cancelled (a
        serving process's background task), so that a Redis outage finds here every lock set
        anywhere before it. A Redis failure here is an outage like any other: logged once, and
        subscribed again after a pause that doubles, from 0.1 s to 5 s. Events sent while this
        node was not subscribed are not heard; the replies to its own calls still bring it each
        name's lock and count."""
        redis = self._redis
        if redis is None:
            return
        pause = _FIRST_PAUSE / 2
        while True:
            try:
                await self._follow(redis)
            except REDIS_ERRORS as exc:
                if not unavailable(exc):
                    # Not an outage but a fault of ours: said every time, and listened for
                    # again all the same, as a task that ended would leave the node deaf.
                    log.error(
                        "lock events: unexpected Redis error", extra={"error": repr(exc)[:200]}
                    )
                elif not self._deaf:
                    self._deaf = True
                    log.warning(
                        "Redis unreachable: lock events from other nodes are not arriving",
                        extra={"error": type(exc).__name__},
                    )
            # A subscription that was heard starts the pauses over.
            pause = _FIRST_PAUSE if self._listening else min(2 * pause, _LONGEST_PAUSE)
            self._listening = False
            await asyncio.sleep(pause)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    # -- internals -----------------------------------------------------------------------------

    def _mirror(
        self, name: str, failures: int, failures_ms: int, lock_ms: int, *, set_here: bool = False
    ) -> None:
        self._lockouts.mirror(
            name, failures, max(0, failures_ms) / 1000, max(0, lock_ms) / 1000, set_here=set_here
        )

    async def _follow(self, redis: aioredis.Redis) -> None:
        """Subscribe and mirror events until Redis fails. Silence for a heartbeat is answered
        with a ping; a second one means a partition (no error comes), and raises."""
        async with redis.pubsub() as pubsub:
            await pubsub.subscribe(self._channel)
            unanswered = False
            while True:
                message = await pubsub.get_message(timeout=self._heartbeat)
                if message is None:
                    if unanswered:
                        raise TimeoutError("no answer on the lock events' channel")
                    await pubsub.ping()
                    unanswered = True
                    continue
                unanswered = False
                if message["type"] == "subscribe":
                    self._heard()
                elif message["type"] == "message":
                    self._learn(message["data"])

    def _heard(self) -> None:
        self._listening = True
        if self._deaf:
            self._deaf = False
            log.warning("Redis reachable again: lock events from other nodes arrive")

    def _learn(self, data: bytes) -> None:
        """Mirror one lock event (see _TELL); anything else on the channel is ignored."""
        try:
            event, node, lock_ms, failures, failures_ms, name = data.decode().split(" ", 5)
            numbers = int(lock_ms), int(failures), int(failures_ms)
        except ValueError:
            return
        if node == self._node:
            return  # this node applied it already
        if event == "lock":
            self._mirror(name, numbers[1], numbers[2], numbers[0])
        elif event in ("refund", "lift"):
            self._lockouts.refunded(name, numbers[1], lifted=event == "lift")
        elif event == "clear":
            self._lockouts.clear(name)
        elif event == "below":
            self._lockouts.clear_below(name)

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


def _event(event: str, node: str, name: str) -> str:
    """A lock event as _TELL writes it, for one that no script sends."""
    return f"{event} {node} 0 0 0 {name}"


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
