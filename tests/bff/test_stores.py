"""The session stores' one contract, on SQLite and on the real local Redis; sessions' timeouts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import REDIS_URL
from tokensmith.bff.sealing import Sealer
from tokensmith.bff.sessions import PendingLogin, SessionRecord, Sessions
from tokensmith.bff.stores import RedisStore, SqliteStore, Store
from tokensmith.core.clock import FrozenClock
from tokensmith.core.sealing import MasterKey, generate_master_key

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    opened: Store
    if request.param == "sqlite":
        opened = SqliteStore(tmp_path / "sessions.db")
    else:
        from redis.asyncio import Redis

        prefix = request.getfixturevalue("redis_prefix")
        opened = RedisStore(Redis.from_url(REDIS_URL), prefix)
    yield opened
    await opened.aclose()


async def test_put_get_take_delete(store: Store) -> None:
    later = int(time.time()) + 60
    assert await store.get(b"k") is None
    await store.put(b"k", b"v1", later)
    await store.put(b"k", b"v2", later)  # a save replaces
    assert await store.get(b"k") == b"v2"
    assert await store.take(b"k") == b"v2"
    assert await store.take(b"k") is None  # taken once only
    await store.put(b"k", b"v3", later)
    await store.delete(b"k")
    assert await store.get(b"k") is None


async def test_an_expired_record_is_gone(store: Store) -> None:
    await store.put(b"old", b"v", int(time.time()) + 1)
    await asyncio.sleep(2.1)
    assert await store.get(b"old") is None
    assert await store.take(b"old") is None


async def test_the_lock_lets_one_holder_in_at_a_time(store: Store) -> None:
    inside, most = 0, 0

    async def hold() -> None:
        nonlocal inside, most
        async with store.lock(b"k"):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(hold() for _ in range(10)))
    assert most == 1


async def test_the_redis_lock_holds_across_nodes(redis_prefix: str) -> None:
    """Two BFF nodes (two clients of one Redis): never both inside one session's lock."""
    from redis.asyncio import Redis

    nodes = [RedisStore(Redis.from_url(REDIS_URL), redis_prefix) for _ in range(2)]
    inside, most = 0, 0

    async def hold(node: RedisStore) -> None:
        nonlocal inside, most
        async with node.lock(b"session:x"):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.02)
            inside -= 1

    try:
        await asyncio.gather(*(hold(nodes[i % 2]) for i in range(8)))
    finally:
        for node in nodes:
            await node.aclose()
    assert most == 1


def _sessions(store: Store, clock: FrozenClock) -> Sessions:
    sealer = Sealer(MasterKey.from_text(generate_master_key()))
    return Sessions(store, sealer, clock, idle=600, absolute=3600, login_timeout=60)


def _record(now: int) -> SessionRecord:
    return SessionRecord("sub-1", "Alice", None, "at", "rt", now + 300, now, now)


async def test_idle_and_absolute_timeouts(store: Store) -> None:
    clock = FrozenClock(time.time())
    sessions = _sessions(store, clock)
    cookie, key = await sessions.create(_record(clock.now()))
    assert sessions.key_of(cookie) == key
    for _ in range(6):  # used every 9 minutes: the idle timeout never comes
        clock.advance(540)
        assert await sessions.load(key) is not None
    clock.advance(3600 - 6 * 540)  # but the absolute one does
    assert await sessions.load(key) is None
    assert await store.get(key) is None  # and the ended session is deleted

    _, idle = await sessions.create(_record(clock.now()))
    clock.advance(601)
    assert await sessions.load(idle) is None


async def test_a_pending_login_opens_once_and_expires(store: Store) -> None:
    clock = FrozenClock(time.time())
    sessions = _sessions(store, clock)
    pending = PendingLogin("state", "nonce", "verifier", "/", clock.now())
    cookie = await sessions.start_login(pending)
    assert await sessions.finish_login(cookie) == pending
    assert await sessions.finish_login(cookie) is None
    late = await sessions.start_login(PendingLogin("s", "n", "v", "/", clock.now()))
    clock.advance(61)
    assert await sessions.finish_login(late) is None
    assert await sessions.finish_login("not-an-id") is None
    assert await sessions.finish_login(None) is None


async def test_a_store_holds_no_usable_cookie_or_token(store: Store, tmp_path: Path) -> None:
    clock = FrozenClock(time.time())
    sessions = _sessions(store, clock)
    cookie, key = await sessions.create(_record(clock.now()))
    sealed = await store.get(key)
    assert sealed is not None
    assert cookie.encode() not in key + sealed
    assert b"sub-1" not in sealed and b'"rt"' not in sealed
    assert sessions.key_of(cookie[:-1] + "x") != key
    assert sessions.key_of("short") is None
