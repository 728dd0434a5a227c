"""Brute-force lockouts held in this process: the policy, the names, and a bounded table.

Lockouts count failures per name (an account, a client, an address): from ``threshold`` failures
within ``window`` on, every further failure locks the name for twice as long as the one before,
from ``first_lock`` up to ``longest_lock``. A hold (an automatic response to an anomaly) locks a
name for a given time, and no refund lifts it.

``LockoutTable`` is that arithmetic on this process's memory, with no I/O: the whole state when no
Redis is configured, and the fallback while it is unreachable (``adapters/redis_limits.py``). It
keeps at most ``max_entries`` names and forgets the least recently used, so a flood of distinct
names costs bounded memory. With Redis, it also mirrors what Redis reported of a name (``mirror``,
``mirror_lock``): the shared failure count and a lock other nodes set, so that an outage neither
lifts that lock early nor starts the count afresh. Every method is one step under a lock and
never awaits, so no caller, on this event loop or another thread, sees a check apart from its
count.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tokensmith.core.addresses import address_bucket

__all__ = [
    "UNLOCKABLE",
    "LockoutPolicy",
    "LockoutTable",
    "Reservation",
    "account_name",
    "client_name",
    "whole_seconds",
]

# What an operator can unlock: lockouts by account, client and address; anomaly holds by client
# and API key (audit/responses.py).
UNLOCKABLE = ("account", "client", "address", "key")


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    threshold: int  # failures within the window before the first lock
    window: float  # seconds
    first_lock: float  # seconds
    longest_lock: float  # seconds


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a reservation answered: the wait if a name was locked (nothing was counted), else
    the names whose lock this attempt set by being counted (each stands until it is refunded)."""

    wait: int | None
    locking: tuple[str, ...] = ()
    shared: bool = True  # the verdict came from Redis, or only from this node's tables
    counted_here: bool = False  # this node's tables counted the attempt (what a refund takes back)


@dataclass(slots=True)
class _Failures:
    count: int
    expires: float
    locked_until: float = 0.0
    held_until: float = 0.0  # an automatic response's hold, which no refund lifts
    # A lock Redis reported that this node's counting did not set (other nodes' failures, a
    # hold): mirrored as Redis gave it, and lifted only by Redis's word, never by a refund here.
    shared_until: float = 0.0

    def lock_left(self, now: float) -> float:
        return max(self.locked_until, self.held_until, self.shared_until) - now


class LockoutTable:
    def __init__(
        self, *, max_entries: int = 100_000, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._failures: OrderedDict[str, _Failures] = OrderedDict()
        # The table changes only in code that never awaits, so one event loop cannot interleave
        # a check with its count; the lock covers callers on other threads too.
        self._lock = threading.Lock()
        self._max_entries = max_entries
        self._monotonic = monotonic

    def __len__(self) -> int:
        return len(self._failures)

    def lock_left(self, name: str) -> float:
        """The seconds ``name`` stays locked (0 or less: not locked)."""
        entry = self._failures.get(name)
        return entry.lock_left(self._monotonic()) if entry is not None else 0.0

    def attempt(self, names: Sequence[tuple[str, LockoutPolicy]], count: bool) -> Reservation:
        """Refuse if any name is locked (nothing counted); else, if ``count``, count a failure
        of every name. One step: the check and the count are never apart."""
        with self._lock:
            now = self._monotonic()
            entries = [self._failures.get(name) for name, _ in names]
            wait = max((entry.lock_left(now) for entry in entries if entry), default=0.0)
            if wait > 0:
                return Reservation(whole_seconds(wait))
            if not count:
                return Reservation(None)
            locking = tuple(name for name, policy in names if self._count(name, policy))
        return Reservation(None, locking, counted_here=True)

    def fail(self, name: str, policy: LockoutPolicy) -> float:
        """Count a failure of ``name``; the lock it set, in seconds (0: none)."""
        with self._lock:
            return self._count(name, policy)

    def refund(self, names: Sequence[tuple[str, LockoutPolicy]]) -> None:
        """Take back one counted failure of each name, and a lock once below the threshold
        again; a hold stays."""
        with self._lock:
            for name, policy in names:
                entry = self._failures.get(name)
                if entry is None or entry.count <= 0:
                    continue
                entry.count -= 1
                if entry.count < policy.threshold:
                    entry.locked_until = 0.0  # a hold (held_until) stays

    def hold(self, name: str, seconds: int) -> None:
        """Lock ``name`` for ``seconds``, or longer if it is already locked for longer."""
        with self._lock:
            entry = self._failures.get(name) or _Failures(0, 0.0)
            until = self._monotonic() + seconds
            entry.held_until = max(entry.held_until, until)
            entry.expires = max(entry.expires, until)
            self._keep(name, entry)

    def mirror(
        self,
        name: str,
        failures: int,
        failures_left: float,
        lock_left: float,
        *,
        set_here: bool = False,
    ) -> None:
        """Take what Redis reported of ``name``: its shared count of ``failures`` (which lives
        ``failures_left`` more seconds) and the seconds its lock has left (0: none).

        The count only ever rises to Redis's (a reply to a parallel attempt may arrive after a
        later one's). ``set_here``: this node's counted attempt set the lock, which is then this
        node's own, lifted by a refund as Redis lifts it; any other lock is mirrored as Redis
        said, never longer, and a name Redis reports unlocked loses its mirrored lock.
        """
        with self._lock:
            now = self._monotonic()
            entry = self._failures.get(name)
            if entry is None:
                if failures <= 0 and lock_left <= 0:
                    return  # nothing to remember: a check costs no entry
                entry = _Failures(0, 0.0)
            if entry.expires <= now:
                entry.count = 0  # as _count would: the window has passed
            if failures > entry.count:
                entry.count = failures
                entry.expires = max(entry.expires, now + failures_left)
            until = now + lock_left if lock_left > 0 else 0.0
            if set_here:
                entry.locked_until = max(entry.locked_until, until)
                entry.shared_until = 0.0  # Redis held no other lock, or this attempt was refused
            else:
                entry.shared_until = until
            entry.expires = max(entry.expires, until)
            self._keep(name, entry)

    def mirror_lock(self, name: str, lock_left: float) -> None:
        """Redis's word on the lock of ``name`` that other nodes set: ``lock_left`` seconds
        (0: none). This node's own lock and hold are untouched."""
        with self._lock:
            entry = self._failures.get(name)
            if entry is None and lock_left <= 0:
                return
            now = self._monotonic()
            entry = entry or _Failures(0, 0.0)
            entry.shared_until = now + lock_left if lock_left > 0 else 0.0
            entry.expires = max(entry.expires, entry.shared_until)
            self._keep(name, entry)

    def refunded(self, name: str, failures: int, *, lifted: bool) -> None:
        """Another node's refund left ``failures`` in Redis, and ``lifted`` its lock: this
        node's copy of the count goes no higher, and a lifted lock goes here too (below the
        threshold in Redis, so below it here). A hold stays."""
        with self._lock:
            entry = self._failures.get(name)
            if entry is None:
                return
            entry.count = min(entry.count, failures)
            if lifted:
                entry.locked_until = entry.shared_until = 0.0

    def clear(self, name: str) -> None:
        """Forget the failures and any lock or hold of ``name``."""
        self._failures.pop(name, None)

    def clear_below(self, prefix: str) -> None:
        """``clear`` every name that starts with ``prefix``."""
        with self._lock:
            for key in [key for key in self._failures if key.startswith(prefix)]:
                del self._failures[key]

    def _count(self, name: str, policy: LockoutPolicy) -> float:
        """Count a failure of ``name``; the lock it set, in seconds (0: none). Hold _lock."""
        now = self._monotonic()
        entry = self._failures.get(name)
        if entry is None or entry.expires <= now:
            entry = _Failures(
                0,
                now + policy.window,
                held_until=entry.held_until if entry else 0.0,
                shared_until=entry.shared_until if entry else 0.0,
            )
        entry.count += 1
        self._keep(name, entry)
        if entry.count < policy.threshold:
            return 0.0
        doublings = min(entry.count - policy.threshold, 30)
        lock = min(policy.longest_lock, policy.first_lock * 2.0**doublings)
        entry.locked_until = now + lock
        entry.expires = max(entry.expires, now + 2 * lock)
        return lock

    def _keep(self, name: str, entry: _Failures) -> None:
        self._failures[name] = entry
        self._failures.move_to_end(name)
        while len(self._failures) > self._max_entries:
            self._failures.popitem(last=False)


def client_name(client_id: str | None, address: str) -> str | None:
    """How failures under a claimed client id are counted: per address they come from, so that
    anyone naming a client cannot lock out its genuine owner elsewhere (SECURITY 58)."""
    return f"{client_id[:128]}@{address_bucket(address)}" if client_id else None


def account_name(username: str) -> str | None:
    """How a typed username is counted: trimmed and case-folded, so "Alice " is "alice"."""
    return username.strip().casefold()[:128] or None


def whole_seconds(seconds: float) -> int:
    """A wait as ``Retry-After`` gives it: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(seconds))
