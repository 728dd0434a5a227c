"""Check-and-count is one step (SECURITY 57), in Redis and in the per-node fallback alike.

Each test runs on both: ``shared`` is a Limits on the real Redis (its own key prefix), ``local``
one without Redis. Parallel calls are real: 25 coroutines at once against Redis, and threads
against the local tables.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support import REDIS_URL, SLOW_MACHINE, TcpProxy
from tokensmith.adapters.redis_limits import Limits
from tokensmith.core.lockouts import LockoutPolicy, client_name

pytestmark = pytest.mark.anyio

FIVE = LockoutPolicy(threshold=5, window=600, first_lock=30, longest_lock=120)
THIRTY = LockoutPolicy(threshold=30, window=600, first_lock=30, longest_lock=120)


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    return redis_prefix


@pytest.fixture(params=["shared", "local"])
async def limits(request: pytest.FixtureRequest) -> AsyncIterator[Limits]:
    if request.param == "shared":
        node = Limits(REDIS_URL, prefix=request.getfixturevalue("prefix"), timeout=SLOW_MACHINE)
    else:
        node = Limits()
    yield node
    assert node.shared == (request.param == "shared")  # never silently degraded
    await node.close()


async def test_parallel_reservations_never_pass_the_threshold(limits: Limits) -> None:
    answers = await asyncio.gather(*(limits.reserve([("account:alice", FIVE)]) for _ in range(25)))
    admitted = [a for a in answers if a.wait is None]
    assert len(admitted) == 5  # at most the threshold reach the password hash
    assert [a.locking for a in admitted].count(("account:alice",)) == 1  # the fifth locked
    assert all(a.wait == 30 for a in answers if a.wait is not None)
    assert await limits.locked("account:alice") == 30


async def test_an_address_is_reserved_with_its_accounts_in_one_step(limits: Limits) -> None:
    """45 attempts from one address at 45 names: 30 reach the hash, never more."""
    answers = await asyncio.gather(
        *(
            limits.reserve([(f"account:user{i}", FIVE), ("address:192.0.2.1", THIRTY)])
            for i in range(45)
        )
    )
    assert sum(a.wait is None for a in answers) == 30
    # A refused attempt counted nothing: every account saw at most its one attempt.
    assert all([await limits.locked(f"account:user{i}") for i in range(45)]) is False


async def test_a_refund_takes_back_an_attempt_and_the_lock_only_it_made(limits: Limits) -> None:
    for _ in range(5):
        assert (await limits.reserve([("address:a", FIVE)])).wait is None
    assert await limits.locked("address:a") == 30
    await limits.refund([("address:a", FIVE)])  # the fifth was a success after all
    assert await limits.locked("address:a") is None
    assert (await limits.reserve([("address:a", FIVE)])).locking == ("address:a",)
    # Failures past the threshold keep the lock they earned, whatever is refunded.
    assert await limits.fail("address:a", FIVE) == 60
    await limits.refund([("address:a", FIVE)])
    assert await limits.locked("address:a") is not None


async def test_a_refund_never_lifts_a_hold(limits: Limits) -> None:
    assert (await limits.reserve([("client:c1", FIVE)])).wait is None
    await limits.hold("client:c1", 60)
    await limits.refund([("client:c1", FIVE)])
    assert await limits.locked("client:c1") == 60


async def test_judging_refuses_right_and_wrong_alike_once_locked(limits: Limits) -> None:
    """The secret is checked first (cheap); one step then refuses if locked, else counts."""
    names = [("client:c@192.0.2.1", FIVE), ("address:192.0.2.1", THIRTY)]
    verdicts = await asyncio.gather(*(limits.judge(names, failed=True) for _ in range(25)))
    assert sum(v.wait is None for v in verdicts) == 5  # five answered 401, twenty 429
    assert (await limits.judge(names, failed=False)).wait == 30  # the right secret too, here
    # Right secrets in parallel never hold each other back.
    other = [("client:d@192.0.2.2", FIVE), ("address:192.0.2.2", THIRTY)]
    verdicts = await asyncio.gather(*(limits.judge(other, failed=False) for _ in range(50)))
    assert all(v.wait is None for v in verdicts)


async def test_a_refused_attempt_counts_nothing(limits: Limits) -> None:
    await limits.hold("account:held", 60)
    for _ in range(10):
        assert (await limits.reserve([("account:held", FIVE), ("address:b", FIVE)])).wait == 60
    assert await limits.locked("address:b") is None
    assert (await limits.reserve([("address:b", FIVE)])).locking == ()


async def test_unlocking_a_client_clears_it_at_every_address(limits: Limits) -> None:
    for address in ("192.0.2.1", "192.0.2.2"):
        name = f"client:{client_name('c*1', address)}"
        for _ in range(5):
            await limits.fail(name, FIVE)
        assert await limits.locked(name) == 30
    await limits.fail("client:c*10@192.0.2.1", FIVE)  # another client, whose id begins alike
    for _ in range(4):
        await limits.fail("client:c*10@192.0.2.1", FIVE)
    assert await limits.unlock({"client": "c*1"}) == {"client": "c*1"}
    assert await limits.locked("client:c*1@192.0.2.1") is None
    assert await limits.locked("client:c*1@192.0.2.2") is None
    assert await limits.locked("client:c*10@192.0.2.1") == 30  # a glob is no wildcard here


async def test_unlocking_an_account_or_address_lifts_its_device_code_entry_locks(
    limits: Limits,
) -> None:
    """``lockouts clear`` names an account or an address; its /device locks go with it."""
    names = ["account:alice", "user_code:alice", "address:2001:db8::/64"]
    names += ["user_code_address:2001:db8::/64", "user_code:bob"]
    for name in names:
        for _ in range(5):
            await limits.fail(name, FIVE)
    cleared = await limits.unlock({"account": " Alice", "address": "2001:db8::7"})
    assert cleared == {"account": " Alice", "address": "2001:db8::7"}
    assert [await limits.locked(name) for name in names] == [None, None, None, None, 30]


def test_local_reservations_are_atomic_across_threads() -> None:
    """The fallback holds a lock around check-and-count: threads cannot interleave them."""
    node = Limits()

    def one() -> bool:
        return asyncio.run(node.reserve([("account:t", FIVE)])).wait is None

    with ThreadPoolExecutor(8) as pool:
        admitted = list(pool.map(lambda _: one(), range(64)))
    assert admitted.count(True) == 5


def test_client_names_are_per_address_and_bounded() -> None:
    assert client_name("app", "192.0.2.1") == "app@192.0.2.1"
    assert client_name(None, "192.0.2.1") is None
    assert client_name("x" * 500, "y" * 500) == "x" * 128 + "@" + "y" * 64


async def test_a_node_that_loses_redis_goes_on_from_its_own_count(prefix: str) -> None:
    """Losing Redis mid-attack gives no fresh allowance: the node's tables shadowed its count."""
    proxy = TcpProxy(6379)
    proxy.start()
    node = Limits(f"redis://127.0.0.1:{proxy.port}/0", prefix=prefix)
    try:
        for _ in range(3):
            assert (await node.reserve([("account:eve", FIVE)])).wait is None
        assert (await node.judge([("address:e", FIVE)], failed=True)).wait is None
        proxy.stop()
        answers = [await node.reserve([("account:eve", FIVE)]) for _ in range(5)]
        # The first call fails in flight and fails closed; the next goes on from the count.
        assert [a.wait is None for a in answers] == [False, True, False, False, False]
        assert not answers[0].shared and not node.shared
        await node.refund([("account:eve", FIVE)], shared=False)  # one was a success
        assert (await node.reserve([("account:eve", FIVE)])).wait is None
        assert (await node.reserve([("account:eve", FIVE)])).wait is not None
    finally:
        await node.close()
        proxy.shutdown()


async def test_redis_and_this_node_admitting_in_different_orders_never_add_up(
    prefix: str,
) -> None:
    """45 attempts at once, Redis answering only the last thirty (the first fifteen calls lose
    their replies): this node counted the first thirty, Redis admitted the other thirty, and
    taking each lost call's verdict from this node's tables would admit all 45."""
    from redis.exceptions import TimeoutError as RedisTimeout

    node = Limits(REDIS_URL, prefix=prefix, timeout=SLOW_MACHINE)
    script = node._attempt_script
    calls = 0

    async def reordered(**kwargs: object) -> object:
        nonlocal calls
        calls += 1
        mine = calls
        if mine <= 15:
            await asyncio.sleep(0.05)  # these reach Redis last, after it locked...
            await script(**kwargs)
            raise RedisTimeout("reply lost")  # ...and their replies never arrive
        return await script(**kwargs)

    node._attempt_script = reordered
    try:
        answers = await asyncio.gather(
            *(
                node.reserve([(f"account:user{i}", FIVE), ("address:192.0.2.1", THIRTY)])
                for i in range(45)
            )
        )
        assert sum(a.wait is None for a in answers) <= 30
    finally:
        await node.close()


async def test_attempts_in_flight_when_redis_goes_still_count_on_this_node(prefix: str) -> None:
    """Redis admits a few attempts whose replies are still on their way when the connection
    breaks: the attempts that then fall back to this node's tables must find those counted, or
    the threshold is passed twice over (20 parallel guesses once got 12 answers past 6)."""
    from redis.exceptions import ConnectionError as RedisDown

    node = Limits(REDIS_URL, prefix=prefix, timeout=SLOW_MACHINE)
    script = node._attempt_script
    calls = 0

    async def breaking(**kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls > 3:
            raise RedisDown("connection reset")  # from the fourth on, Redis is gone
        answer = await script(**kwargs)  # counted in Redis...
        await asyncio.sleep(0.05)  # ...and the reply arrives after the others fell back
        return answer

    node._attempt_script = breaking
    try:
        answers = await asyncio.gather(*(node.reserve([("account:bob", FIVE)]) for _ in range(20)))
        assert [a.shared for a in answers].count(False) == 17  # all but the three in flight
        assert [a.wait is None for a in answers].count(True) <= 5
        assert answers[3].wait == 1  # the attempt whose call failed is refused, not guessed at
    finally:
        await node.close()
