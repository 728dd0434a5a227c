"""Token buckets per client and per API key, in memory, with a bounded number of buckets."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """``per_minute`` requests a minute, with bursts up to the same number."""

    def __init__(
        self,
        per_minute: int,
        *,
        max_buckets: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_buckets = max_buckets
        self._monotonic = monotonic
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, updated)

    def take(self, name: str) -> int:
        """0 if the request may pass, else the seconds to wait (for Retry-After)."""
        now = self._monotonic()
        tokens, updated = self._buckets.pop(name, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - updated) * self.rate)
        if len(self._buckets) >= self.max_buckets:
            # Full: forget the least recently used (dicts keep order; we re-insert on use).
            self._buckets.pop(next(iter(self._buckets)))
        if tokens < 1.0:
            self._buckets[name] = (tokens, now)
            return max(1, int((1.0 - tokens) / self.rate) + 1)
        self._buckets[name] = (tokens - 1.0, now)
        return 0
