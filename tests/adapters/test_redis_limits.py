"""Rate limits and lockouts on the real Redis, per node without it, and across an outage."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support import REDIS_URL, SLOW_MACHINE, TcpProxy, refused_port
from tokensmith.adapters.redis_limits import Limits
from tokensmith.core.clock import FrozenClock
from tokensmith.core.lockouts import LockoutPolicy

pytestmark = pytest.mark.anyio


POLICY = LockoutPolicy(threshold=3, window=600, first_lock=30, longest_lock=120)


@pytest.fixture
async def nodes(redis_prefix: str) -> AsyncIterator[tuple[Limits, Limits]]:
    first = Limits(REDIS_URL, prefix=redis_prefix, timeout=SLOW_MACHINE)
    second = Limits(REDIS_URL, prefix=redis_prefix, timeout=SLOW_MACHINE)
    yield first, second
    await first.close()
    await second.close()


async def test_a_rate_limit_is_shared_by_nodes(nodes: tuple[Limits, Limits]) -> None:
    a, b = nodes
    assert await a.take("client:x", 4, 60) is None
    assert await b.take("client:x", 4, 60) is None
    assert await a.take("client:x", 4, 60) is None
    assert await b.take("client:x", 4, 60) is None
    assert await a.take("client:x", 4, 60) == 15  # one request per 15 s refills
    assert await b.take("client:y", 4, 60) is None
    assert a.shared and b.shared


async def test_a_lockout_is_shared_and_backs_off(nodes: tuple[Limits, Limits]) -> None:
    a, b = nodes
    assert await a.fail("user:alice", POLICY) is None
    assert await b.fail("user:alice", POLICY) is None
    assert await a.locked("user:alice") is None
    assert await b.fail("user:alice", POLICY) == 30  # the third failure locks
    assert 29 <= (await a.locked("user:alice") or 0) <= 30
    assert await a.fail("user:alice", POLICY) == 60  # and each one after doubles it
    assert await b.fail("user:alice", POLICY) == 120
    assert await b.fail("user:alice", POLICY) == 120  # up to the longest lock
    await b.clear("user:alice")
    assert await a.locked("user:alice") is None
    assert await a.fail("user:alice", POLICY) is None


async def test_a_hold_is_shared_and_never_shortens_a_lock(nodes: tuple[Limits, Limits]) -> None:
    a, b = nodes
    await a.hold("client:spiky", 60)
    assert 59 <= (await b.locked("client:spiky") or 0) <= 60
    await b.hold("client:spiky", 5)  # a shorter hold leaves the longer lock as it is
    assert (await a.locked("client:spiky") or 0) >= 59
    await a.clear("client:spiky")  # an operator's unlock ends a hold too
    assert await b.locked("client:spiky") is None


async def test_a_hold_without_redis() -> None:
    ticks = FrozenClock(start=1000)
    alone = Limits(monotonic=ticks.monotonic)
    await alone.hold("key:k1", 120)
    await alone.hold("key:k1", 10)
    assert await alone.locked("key:k1") == 120
    assert await alone.fail("key:k1", POLICY) is None  # failures count on; the hold stays
    assert await alone.locked("key:k1") == 120
    ticks.advance(120)
    assert await alone.locked("key:k1") is None


async def test_without_redis_limits_hold_per_node() -> None:
    ticks = FrozenClock(start=1000)
    alone = Limits(monotonic=ticks.monotonic)
    assert not alone.shared
    assert [await alone.take("addr:1", 2, 60) for _ in range(3)] == [None, None, 30]
    for _ in range(2):
        assert await alone.fail("user:bob", POLICY) is None
    assert await alone.fail("user:bob", POLICY) == 30
    assert await alone.locked("user:bob") == 30
    ticks.advance(30)
    assert await alone.locked("user:bob") is None
    assert await alone.fail("user:bob", POLICY) == 60
    await alone.clear("user:bob")
    assert await alone.locked("user:bob") is None


async def test_the_failure_window_forgets_old_failures() -> None:
    ticks = FrozenClock(start=1000)
    alone = Limits(monotonic=ticks.monotonic)
    await alone.fail("user:carol", POLICY)
    await alone.fail("user:carol", POLICY)
    ticks.advance(601)
    assert await alone.fail("user:carol", POLICY) is None


async def test_a_flood_of_names_keeps_memory_bounded() -> None:
    alone = Limits(max_local_entries=500)
    for i in range(20_000):
        await alone.fail(f"addr:{i}", POLICY)
        await alone.take(f"addr:{i}", 10, 60)
    assert len(alone._lockouts) == 500 and len(alone._buckets) == 500


async def test_redis_refusing_connections_degrades_to_local_limits() -> None:
    reports: list[bool] = []
    closed = Limits(f"redis://127.0.0.1:{refused_port()}/0", on_degraded=reports.append)
    try:
        assert [await closed.take("k", 1, 60) for _ in range(2)] == [None, 60]
        assert await closed.fail("u", LockoutPolicy(1, 60, 10, 10)) == 10
        assert await closed.locked("u") == 10
        assert reports == [True] and not closed.shared
    finally:
        await closed.close()


async def test_redis_going_away_mid_run_and_coming_back(redis_prefix: str) -> None:
    """Stopped mid-run: limits continue per node, one warning; back again: shared once more."""
    proxy = TcpProxy(6379)
    proxy.start()
    ticks = FrozenClock(start=1000)
    reports: list[bool] = []
    node = Limits(
        f"redis://127.0.0.1:{proxy.port}/0",
        prefix=redis_prefix,
        on_degraded=reports.append,
        monotonic=ticks.monotonic,
    )
    other = Limits(REDIS_URL, prefix=redis_prefix, timeout=SLOW_MACHINE)
    try:
        assert await node.take("c", 3, 60) is None
        assert node.shared
        proxy.stop()
        assert await node.take("c", 3, 60) is None  # local bucket: a fresh allowance
        assert await node.take("c", 3, 60) is None
        assert await node.take("c", 3, 60) is None
        assert await node.take("c", 3, 60) is not None  # still limited, never unlimited
        assert reports == [True]
        proxy.start()
        ticks.advance(5)  # the pause before Redis is tried again
        assert await other.take("c", 3, 60) is None  # the shared bucket: 2 of 3 used now
        assert await node.take("c", 3, 60) is None
        assert await other.take("c", 3, 60) is not None
        assert node.shared and reports == [True, False]
    finally:
        await node.close()
        await other.close()
        proxy.shutdown()
