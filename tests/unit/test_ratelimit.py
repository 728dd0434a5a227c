"""The in-process token buckets."""

from __future__ import annotations

from tokensmith.core.ratelimit import RateLimiter


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_up_to_the_limit_then_a_wait() -> None:
    ticks = Ticks()
    limiter = RateLimiter(monotonic=ticks)
    assert all(limiter.take("k", 5, 60.0) is None for _ in range(5))
    assert limiter.take("k", 5, 60.0) == 12  # one token refills in 60/5 s
    ticks.now += 12
    assert limiter.take("k", 5, 60.0) is None
    assert limiter.take("k", 5, 60.0) is not None


def test_buckets_are_independent() -> None:
    limiter = RateLimiter(monotonic=Ticks())
    assert limiter.take("a", 1, 60.0) is None
    assert limiter.take("a", 1, 60.0) is not None
    assert limiter.take("b", 1, 60.0) is None


def test_a_flood_of_names_keeps_memory_bounded() -> None:
    limiter = RateLimiter(max_entries=1000, monotonic=Ticks())
    for i in range(50_000):
        limiter.take(f"name-{i}", 10, 60.0)
    assert len(limiter) == 1000


def test_a_limited_caller_stays_limited_while_recently_seen() -> None:
    ticks = Ticks()
    limiter = RateLimiter(max_entries=10, monotonic=ticks)
    limiter.take("busy", 1, 60.0)
    for i in range(9):
        limiter.take(f"other-{i}", 1, 60.0)
    assert limiter.take("busy", 1, 60.0) is not None
