"""The Redis client of the server's parts (adapters/redis_client.py) through a FaultProxy, under
uvloop and under asyncio's own loop: what counts as Redis being away, that no call outlasts its
timeout, and that connections reset under the pool are never used again."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.exceptions import (
    BusyLoadingError,
    DataError,
    InvalidResponse,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tests.faults import FaultProxy, LoopRunner
from tests.support import REDIS_URL
from tokensmith.adapters.redis_client import never_sent, open_redis, unavailable
from tokensmith.adapters.redis_limits import Limits
from tokensmith.adapters.redis_replay import RedisProofStore
from tokensmith.core.clock import FrozenClock
from tokensmith.errors import TemporarilyUnavailable
from tokensmith.oauth.dpop import proof_hash

TIMEOUT = 0.25
# A failed call costs at most a connect and a read: each TIMEOUT, plus a loaded machine's slack.
BOUND = 3 * TIMEOUT
CLOSED = (
    "unable to perform operation on <TCPTransport closed=True reading=False>; the handler is closed"
)


@pytest.mark.parametrize(
    ("exc", "away"),
    [
        (RuntimeError(CLOSED), True),  # uvloop, writing on a connection the peer reset
        (RuntimeError("Event loop is closed"), False),
        (RedisConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused."), True),
        (ConnectionResetError(104, "Connection reset by peer"), True),
        (RedisTimeoutError("Timeout reading from 127.0.0.1:6379"), True),
        (TimeoutError(), True),
        (InvalidResponse("Protocol Error"), True),
        (BusyLoadingError("Redis is loading the dataset in memory"), True),
        (ReadOnlyError("You can't write against a read only replica."), True),
        (OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), True),
        (ResponseError("BUSY Redis is busy running a script."), True),
        (ResponseError("MISCONF Redis is configured to save RDB snapshots"), True),
        (ResponseError("user_script:3: attempt to compare nil with number"), False),
        (ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), False),
        (DataError("Invalid input of type: 'dict'."), False),
        (RedisError("Cannot issue nested calls to MULTI"), False),
        (ValueError("not redis at all"), False),
    ],
)
def test_what_counts_as_redis_being_away(exc: BaseException, away: bool) -> None:
    assert unavailable(exc) is away


def test_what_certainly_never_reached_redis() -> None:
    assert never_sent(RedisConnectionError("Error 111 connecting to 127.0.0.1:1. Refused."))
    assert never_sent(RuntimeError(CLOSED))
    assert not never_sent(RedisTimeoutError("Timeout reading from 127.0.0.1:6379"))
    assert not never_sent(RedisConnectionError("Error while reading from 127.0.0.1:6379"))


async def _timed(call: Callable[[], Awaitable[object]]) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        await call()
    except Exception as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


async def _open_pooled(client: Any, n: int) -> None:
    """``n`` connections in the pool, all idle: as after a burst of requests."""
    await asyncio.gather(*(client.ping() for _ in range(n)))


def test_connections_reset_under_the_pool_are_never_used(
    on_each_loop: LoopRunner,
) -> None:
    """Before: each connection the peer had reset failed its next command (RuntimeError under
    uvloop), on a node with no traffic during the outage too."""

    async def scenario() -> None:
        with FaultProxy(6379) as proxy:
            client = open_redis(f"redis://{proxy.url_port}/0", TIMEOUT)
            try:
                await _open_pooled(client, 4)
                proxy.reset()
                await asyncio.sleep(0.05)  # the resets arrive while the pool is idle
                for _ in range(4):
                    assert await client.ping()
                await _open_pooled(client, 4)
                proxy.cut()
                await asyncio.sleep(0.05)
                proxy.heal()  # back before anyone used the pool again
                results = await asyncio.gather(*(client.ping() for _ in range(6)))
                assert all(results)
            finally:
                await client.aclose()

    on_each_loop(scenario())


def test_connections_redis_closed_are_never_used(
    on_each_loop: LoopRunner, redis_prefix: str
) -> None:
    """Redis closing its end (a restart, its idle timeout, CLIENT KILL): redis-py 8 with RESP3
    skips its own end-of-stream check, and the next command failed, "Connection closed by
    server"."""
    import redis

    name = redis_prefix.replace(":", "-")  # this test's connections alone are closed

    async def scenario() -> None:
        client = open_redis(REDIS_URL, 5.0)
        try:
            await client.client_setname(name)
            admin = redis.Redis.from_url(REDIS_URL)
            mine = [c["id"] for c in admin.client_list() if c.get("name") == name]
            assert len(mine) == 1
            assert admin.client_kill_filter(_id=mine[0]) == 1
            admin.close()
            await asyncio.sleep(0.05)  # the close arrives while the pool is idle
            assert await client.ping()
        finally:
            await client.aclose()

    on_each_loop(scenario())


def test_a_call_never_outlasts_its_timeout(
    on_each_loop: LoopRunner,
) -> None:
    """No retries inside redis-py: refused, reset or silent, a call ends within BOUND."""

    async def scenario() -> None:
        with FaultProxy(6379) as proxy:
            client = open_redis(f"redis://{proxy.url_port}/0", TIMEOUT)
            try:
                await _open_pooled(client, 2)
                proxy.partition()
                pooled = await _timed(client.ping)  # on a connection open before
                await client.connection_pool.disconnect()
                fresh = await _timed(client.ping)  # connected, then silence
                proxy.heal()
                proxy.cut()
                refused = await _timed(client.ping)
                for took, exc in (pooled, fresh, refused):
                    assert exc is not None and unavailable(exc)
                    assert took < BOUND
                proxy.heal()
                assert await client.ping()
            finally:
                await client.aclose()

    on_each_loop(scenario())


def test_after_a_failure_every_connection_open_before_is_renewed(
    on_each_loop: LoopRunner,
) -> None:
    """A connection that died without a word is found only by using it: after one failure the
    pool reconnects them all, so an outage costs one failed call, not one per connection."""

    async def scenario() -> None:
        with FaultProxy(6379) as proxy:
            ticks = FrozenClock(start=1000)
            limits = Limits(
                f"redis://{proxy.url_port}/0", timeout=TIMEOUT, monotonic=ticks.monotonic
            )
            try:
                await asyncio.gather(*(limits.take(f"n{i}", 10, 60) for i in range(3)))
                before = proxy.connections
                proxy.partition()
                assert await limits.take("n0", 10, 60) is None  # timed out: per node
                assert not limits.shared
                proxy.heal()
                ticks.advance(5)  # the pause after an outage
                assert await limits.take("n0", 10, 60) is None
                assert limits.shared
                assert proxy.connections == before + 1  # the old ones were not reused
            finally:
                await limits.close()

    on_each_loop(scenario())


def test_limits_never_raise_for_an_outage(on_each_loop: LoopRunner) -> None:
    async def scenario() -> None:
        reports: list[bool] = []
        with FaultProxy(6379) as proxy:
            limits = Limits(
                f"redis://{proxy.url_port}/0", timeout=TIMEOUT, on_degraded=reports.append
            )
            try:
                await asyncio.gather(*(limits.take("c", 100, 60) for _ in range(4)))
                proxy.cut()
                took, exc = await _timed(lambda: limits.take("c", 100, 60))
                assert exc is None and took < BOUND
                assert reports == [True]
            finally:
                await limits.close()

    on_each_loop(scenario())


@pytest.mark.anyio
async def test_a_script_error_is_a_fault_not_an_outage(redis_prefix: str) -> None:
    """Precise, not everything: a bucket key of the wrong type (another program's key under our
    prefix) is raised, never hidden behind the per-node fallback."""
    import redis

    redis.Redis.from_url(REDIS_URL).set(f"{redis_prefix}rl:taken", "a string")
    limits = Limits(REDIS_URL, prefix=redis_prefix, timeout=5.0)
    try:
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await limits.take("taken", 10, 60)
        assert limits.shared
    finally:
        await limits.close()


@pytest.mark.parametrize("fault", ["cut", "reset", "partition"])
def test_a_dpop_record_that_cannot_be_written_refuses_the_proof(
    on_each_loop: LoopRunner,
    fault: str,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Fail closed: TemporarilyUnavailable (503), never a bare error, within BOUND; a reset
    alone costs nothing, since no reset connection is used again."""

    async def scenario() -> None:
        with FaultProxy(6379) as proxy:
            store = RedisProofStore(
                f"redis://{proxy.url_port}/0", prefix=redis_prefix, timeout=TIMEOUT
            )
            expires = int(time.time()) + 60
            try:
                assert await store.remember(proof_hash("jkt", "before"), expires)
                getattr(proxy, fault)()
                await asyncio.sleep(0.05)
                for attempt in range(2):
                    proof = proof_hash("jkt", f"in-{attempt}")
                    took, exc = await _timed(functools.partial(store.remember, proof, expires))
                    assert took < BOUND
                    if fault == "reset":
                        assert exc is None
                    else:
                        assert isinstance(exc, TemporarilyUnavailable)
                proxy.heal()
                assert await store.remember(proof_hash("jkt", "after"), expires)
                said = [r.getMessage() for r in caplog.records if "DPoP" in r.getMessage()]
                if fault != "reset":  # once per outage, however many proofs it refuses
                    assert said == [
                        "Redis unreachable: DPoP proofs refused",
                        "Redis reachable again: DPoP proofs accepted",
                    ]
            finally:
                await store.close()

    on_each_loop(scenario())
