"""A Redis outage never lifts a lock early, nor gives a guesser a fresh count, on any node.

Two nodes on one real Redis, each with its own key prefix per test: ``a`` straight to Redis,
``b`` through a ``FaultProxy`` that a test cuts or partitions. ``b`` keeps time on a frozen
clock, so a test runs past a lock without waiting for it; Redis's own clock never needs to.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.faults import FaultProxy
from tests.support import REDIS_URL, SLOW_MACHINE
from tokensmith.adapters.redis_limits import Limits
from tokensmith.core.clock import FrozenClock
from tokensmith.core.lockouts import LockoutPolicy

pytestmark = pytest.mark.anyio

POLICY = LockoutPolicy(threshold=3, window=600, first_lock=30, longest_lock=120)


@dataclass
class Nodes:
    a: Limits  # straight to Redis
    b: Limits  # through the proxy, on the frozen clock
    proxy: FaultProxy
    ticks: FrozenClock


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    relay = FaultProxy(6379)
    yield relay
    relay.close()


@pytest.fixture
async def nodes(redis_prefix: str, proxy: FaultProxy) -> AsyncIterator[Nodes]:
    ticks = FrozenClock(start=1000)
    a = Limits(REDIS_URL, prefix=redis_prefix, timeout=SLOW_MACHINE)
    b = Limits(
        f"redis://127.0.0.1:{proxy.port}/0",
        prefix=redis_prefix,
        timeout=SLOW_MACHINE,
        monotonic=ticks.monotonic,
        heartbeat=0.2,
    )
    yield Nodes(a, b, proxy, ticks)
    await a.close()
    await b.close()


@pytest.fixture
async def listening(nodes: Nodes) -> AsyncIterator[Nodes]:
    """``nodes``, with ``b`` subscribed to the lock events (as a serving process is)."""
    task = asyncio.create_task(nodes.b.listen())
    await until(lambda: nodes.b.listening)
    yield nodes
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` for at most 5 s; fail the test if it never holds."""
    deadline = asyncio.get_running_loop().time() + 5
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.01)


async def lock_through_a(nodes: Nodes, name: str) -> None:
    for _ in range(POLICY.threshold):
        await nodes.a.fail(name, POLICY)
    assert await nodes.a.locked(name) == 30


async def cut(nodes: Nodes) -> None:
    """Redis goes away from ``b``, which finds out (a call in flight would fail closed)."""
    nodes.proxy.cut()
    assert not await nodes.b.ping()


def learned(nodes: Nodes, name: str) -> Callable[[], bool]:
    return lambda: nodes.b._lockouts.lock_left(name) > 0


async def test_a_lock_redis_reported_outlives_the_outage(nodes: Nodes) -> None:
    """``b`` only asked about a lock that ``a``'s failures set; cut off, it still refuses."""
    await lock_through_a(nodes, "client:c1@192.0.2.1")
    checked = await nodes.b.judge([("client:c1@192.0.2.1", POLICY)], failed=False)
    assert checked.wait == 30 and checked.shared
    await cut(nodes)
    outage = await nodes.b.judge([("client:c1@192.0.2.1", POLICY)], failed=True)
    assert outage.wait == 30 and not outage.shared  # 429, not 401
    assert await nodes.b.locked("client:c1@192.0.2.1") == 30  # never longer than Redis said
    nodes.ticks.advance(30)
    # The count goes on from Redis's three: the next failure locks at once, for twice as long.
    after = await nodes.b.judge([("client:c1@192.0.2.1", POLICY)], failed=True)
    assert after.wait is None and after.locking == ("client:c1@192.0.2.1",)
    assert await nodes.b.locked("client:c1@192.0.2.1") == 60


async def test_the_shared_count_outlives_the_outage(nodes: Nodes) -> None:
    """Two failures on ``a``, which ``b`` saw in a reply: cut off, ``b``'s next is the third."""
    await nodes.a.fail("account:dave", POLICY)
    await nodes.a.fail("account:dave", POLICY)
    assert (await nodes.b.judge([("account:dave", POLICY)], failed=False)).wait is None
    await cut(nodes)
    third = await nodes.b.judge([("account:dave", POLICY)], failed=True)
    assert third.locking == ("account:dave",) and not third.shared
    assert await nodes.b.locked("account:dave") == 30


async def test_every_node_learns_a_lock_as_it_is_set(listening: Nodes) -> None:
    """``b`` never saw the name while Redis was up: the lock event told it."""
    nodes = listening
    await lock_through_a(nodes, "address:198.51.100.7")
    await until(learned(nodes, "address:198.51.100.7"))
    await cut(nodes)
    refused = await nodes.b.reserve([("account:eve", POLICY), ("address:198.51.100.7", POLICY)])
    assert refused.wait == 30 and not refused.shared
    assert await nodes.b.locked("address:198.51.100.7") == 30
    nodes.ticks.advance(30)
    # The event carried the count too: no fresh allowance once the lock has run out.
    assert (await nodes.b.reserve([("address:198.51.100.7", POLICY)])).locking
    assert await nodes.b.locked("address:198.51.100.7") == 60


async def test_a_hold_reaches_every_node(listening: Nodes) -> None:
    nodes = listening
    await nodes.a.hold("key:k9", 90)
    await until(learned(nodes, "key:k9"))
    await cut(nodes)
    assert await nodes.b.locked("key:k9") == 90


async def test_an_unlock_reaches_every_node_before_the_outage(listening: Nodes) -> None:
    """An operator's unlock on ``a`` is not resurrected by ``b``'s table when Redis goes."""
    nodes = listening
    names: dict[str, str | None] = {"account": "Frank", "client": "c2"}
    await lock_through_a(nodes, "account:frank")
    await lock_through_a(nodes, "client:c2@192.0.2.9")
    await until(learned(nodes, "account:frank"))
    await until(learned(nodes, "client:c2@192.0.2.9"))
    assert await nodes.a.unlock(names) == names
    await until(lambda: not learned(nodes, "account:frank")())
    await until(lambda: not learned(nodes, "client:c2@192.0.2.9")())
    await cut(nodes)
    assert await nodes.b.locked("account:frank") is None
    assert await nodes.b.locked("client:c2@192.0.2.9") is None
    # Cleared with its failures: a fresh count, as in Redis.
    assert (await nodes.b.judge([("client:c2@192.0.2.9", POLICY)], failed=True)).locking == ()


async def test_an_unlock_during_the_outage_is_this_nodes_alone(listening: Nodes) -> None:
    nodes = listening
    await lock_through_a(nodes, "account:gina")
    await until(learned(nodes, "account:gina"))
    await cut(nodes)
    nodes.ticks.advance(5)
    await nodes.b.unlock({"account": "gina"})  # Redis unreachable from b: only b forgets
    assert await nodes.b.locked("account:gina") is None
    assert await nodes.a.locked("account:gina") == 30


async def test_a_refund_never_lifts_a_lock_other_nodes_set(listening: Nodes) -> None:
    """``b`` reserved before ``a``'s failures locked the name; ``b``'s refund in the outage
    takes back its own attempt, and leaves the lock."""
    nodes = listening
    name = [("address:203.0.113.5", POLICY)]
    reserved = await nodes.b.reserve(name)
    assert reserved.wait is None and reserved.counted_here
    await nodes.a.fail("address:203.0.113.5", POLICY)
    await nodes.a.fail("address:203.0.113.5", POLICY)  # the third failure: locked
    await until(learned(nodes, "address:203.0.113.5"))
    await cut(nodes)
    await nodes.b.refund(name, shared=reserved.shared, counted_here=reserved.counted_here)
    assert await nodes.b.locked("address:203.0.113.5") == 30


async def test_a_refund_lifts_the_lock_its_attempt_set(listening: Nodes) -> None:
    """The attempt that set a lock is refunded (a right password after all): the lock goes, in
    Redis, on the node that counted it, and on the node that learned of it."""
    nodes = listening
    name = [("account:hal", POLICY)]
    for _ in range(POLICY.threshold - 1):
        assert (await nodes.a.reserve(name)).locking == ()
    third = await nodes.a.reserve(name)
    assert third.locking == ("account:hal",)
    await until(learned(nodes, "account:hal"))
    await nodes.a.refund(name, shared=third.shared, counted_here=third.counted_here)
    await until(lambda: not learned(nodes, "account:hal")())
    assert await nodes.a.locked("account:hal") is None
    await cut(nodes)
    assert await nodes.b.locked("account:hal") is None
    # b's copy of the count is Redis's two: the next failure here is the third.
    assert (await nodes.b.judge(name, failed=True)).locking == ("account:hal",)


async def test_a_refund_on_the_locking_node_lifts_its_own_lock(nodes: Nodes) -> None:
    name = [("account:ida", POLICY)]
    for _ in range(POLICY.threshold - 1):
        await nodes.a.reserve(name)
    third = await nodes.b.reserve(name)
    assert third.locking == ("account:ida",) and third.counted_here
    await nodes.b.refund(name, shared=third.shared, counted_here=third.counted_here)
    assert await nodes.a.locked("account:ida") is None
    await cut(nodes)
    assert await nodes.b.locked("account:ida") is None


async def test_the_listener_survives_a_cut_and_a_partition(
    listening: Nodes, caplog: pytest.LogCaptureFixture
) -> None:
    """Each outage is logged once; healed, it subscribes again by itself and hears on."""
    nodes = listening
    caplog.set_level(logging.WARNING, logger="tokensmith.adapters.redis_limits")
    await cut(nodes)
    await until(lambda: not nodes.b.listening)
    await asyncio.sleep(0.5)  # several failed attempts to subscribe again
    nodes.proxy.heal()
    await until(lambda: nodes.b.listening)
    nodes.proxy.partition()  # silence, no error: the unanswered ping finds it
    await until(lambda: not nodes.b.listening)
    nodes.proxy.heal()
    await until(lambda: nodes.b.listening)
    await lock_through_a(nodes, "client:c3@192.0.2.3")
    await until(learned(nodes, "client:c3@192.0.2.3"))
    said = [r.getMessage() for r in caplog.records if "lock events" in r.getMessage()]
    assert (
        said
        == [
            "Redis unreachable: lock events from other nodes are not arriving",
            "Redis reachable again: lock events from other nodes arrive",
        ]
        * 2
    )


async def test_strangers_on_the_channel_are_ignored(listening: Nodes) -> None:
    nodes = listening
    redis = nodes.a._redis
    assert redis is not None
    for junk in (b"lock", b"lock x y z w name", b"\xff\xfe", b"shout x 1 2 3 account:ivy"):
        await redis.publish(nodes.a._channel, junk)
    await lock_through_a(nodes, "account:ivy")
    await until(learned(nodes, "account:ivy"))  # still listening, in order
    assert nodes.b.listening
