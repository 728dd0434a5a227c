"""An injectable clock, so that logic never reads the wall clock behind a test's back."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "FrozenClock", "SystemClock"]


class Clock(Protocol):
    def now(self) -> int:
        """Seconds since the epoch, as an integer (the unit of every JWT time claim)."""
        ...


class SystemClock:
    def now(self) -> int:
        return int(time.time())


class FrozenClock:
    """A clock that moves only when told to; for tests and replays.

    One time line serves both kinds of clock the code takes: ``now()``, whole seconds since the
    epoch (a ``Clock``), and ``monotonic()``, the same instant in fractional seconds, to pass
    where code takes ``monotonic: Callable[[], float]`` (caches, rate limits, budgets).
    ``advance`` moves both, by whole or fractional seconds; ``now()`` counts whole ones.
    """

    def __init__(self, start: float = 1_700_000_000) -> None:
        self._time = float(start)

    def now(self) -> int:
        return int(self._time // 1)

    def monotonic(self) -> float:
        return self._time

    def advance(self, seconds: float) -> None:
        self._time += seconds
