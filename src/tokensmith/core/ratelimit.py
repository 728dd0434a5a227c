"""Token buckets held in this process, bounded in memory.

A bucket per name (a key id, a client id, an address) holds up to ``limit`` tokens and refills at
``limit / period`` per second, so a steady caller gets ``limit`` requests per ``period`` and a burst
of up to ``limit``. The table keeps at most ``max_entries`` buckets and forgets the least recently
used: forgetting a bucket only ever gives its owner a fresh allowance, so a flood of distinct
names costs bounded memory and never blocks anyone who was not already limited.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(
        self, *, max_entries: int = 100_000, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max_entries = max_entries
        self._monotonic = monotonic

    def take(self, name: str, limit: int, period: float) -> int | None:
        """Spend one token. None if allowed, else the whole seconds to wait (``Retry-After``)."""
        now = self._monotonic()
        rate = limit / period
        tokens, updated = self._buckets.get(name, (float(limit), now))
        tokens = min(float(limit), tokens + (now - updated) * rate)
        if tokens < 1.0:
            self._buckets[name] = (tokens, now)
            self._buckets.move_to_end(name)
            return max(1, math.ceil((1.0 - tokens) / rate))
        self._buckets[name] = (tokens - 1.0, now)
        self._buckets.move_to_end(name)
        while len(self._buckets) > self._max_entries:
            self._buckets.popitem(last=False)
        return None

    def __len__(self) -> int:
        return len(self._buckets)
