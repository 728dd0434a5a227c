"""The in-process token buckets."""

from __future__ import annotations

from tokensmith.core.clock import FrozenClock
from tokensmith.core.ratelimit import RateLimiter


def test_a_burst_up_to_the_limit_then_a_wait() -> None:
    ticks = FrozenClock(start=100)
    limiter = RateLimiter(monotonic=ticks.monotonic)
    assert all(limiter.take("k", 5, 60.0) is None for _ in range(5))
    assert limiter.take("k", 5, 60.0) == 12  # one token refills in 60/5 s
    ticks.advance(12)
    assert limiter.take("k", 5, 60.0) is None
    assert limiter.take("k", 5, 60.0) is not None


def test_buckets_are_independent() -> None:
    limiter = RateLimiter(monotonic=FrozenClock(start=100).monotonic)
    assert limiter.take("a", 1, 60.0) is None
    assert limiter.take("a", 1, 60.0) is not None
    assert limiter.take("b", 1, 60.0) is None


def test_a_flood_of_names_keeps_memory_bounded() -> None:
    limiter = RateLimiter(max_entries=1000, monotonic=FrozenClock(start=100).monotonic)
    for i in range(50_000):
        limiter.take(f"name-{i}", 10, 60.0)
    assert len(limiter) == 1000


def test_a_limited_caller_stays_limited_while_recently_seen() -> None:
    ticks = FrozenClock(start=100)
    limiter = RateLimiter(max_entries=10, monotonic=ticks.monotonic)
    limiter.take("busy", 1, 60.0)
    for i in range(9):
        limiter.take(f"other-{i}", 1, 60.0)
    assert limiter.take("busy", 1, 60.0) is not None
