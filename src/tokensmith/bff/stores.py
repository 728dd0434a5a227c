"""Where sealed records live: SQLite on this machine (the default) or Redis shared by BFF nodes.

A store sees only opaque keys (keyed hashes) and sealed bytes, each with its expiry. Besides get,
put and delete it offers ``take`` (read and delete at once: a login's pending record opens one
callback, never two) and ``lock``, which makes a session's refresh single-flight: in one process
an asyncio lock per key; with Redis also a lock in Redis (SET NX with a timeout, released only by
its holder), so two nodes never present one refresh token twice.

A Redis store that cannot reach Redis (refused, reset, no answer within ``REDIS_TIMEOUT``) raises
``StoreUnavailable``, which the app answers with 503: a session it cannot read is neither valid
nor signed out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tokensmith.core.secrets import random_token

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "REDIS_TIMEOUT",
    "LockTimeout",
    "RedisStore",
    "SqliteStore",
    "Store",
    "StoreUnavailable",
    "open_store",
]

log = logging.getLogger("tokensmith.bff")
T = TypeVar("T")
REDIS_TIMEOUT = 1.0  # seconds for each step of a Redis call (connect, write, read); no retries


class LockTimeout(Exception):
    """Another holder kept a session's lock past the wait."""


class StoreUnavailable(Exception):
    """The store cannot be reached now; the request may succeed shortly."""


class Store(Protocol):
    async def get(self, key: bytes) -> bytes | None: ...
    async def put(self, key: bytes, value: bytes, expires_at: int) -> None: ...
    async def take(self, key: bytes) -> bytes | None: ...
    async def delete(self, key: bytes) -> None: ...
    def lock(self, key: bytes) -> AbstractAsyncContextManager[object]: ...
    async def aclose(self) -> None: ...


class _LocalLocks:
    """One asyncio lock per key, dropped when no one holds or waits for it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[bytes, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def of(self, key: bytes) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock


class SqliteStore:
    def __init__(self, path: Path, *, clock: Any = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # tokens, sealed: still owner-only
        os.close(fd)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS bff_records "
            "(key BLOB PRIMARY KEY, value BLOB NOT NULL, expires_at INTEGER NOT NULL)"
        )
        self._mutex = threading.Lock()
        self._locks = _LocalLocks()
        self._clock = clock
        self._writes = 0

    def _run(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        with self._mutex:
            return self._db.execute(sql, params).fetchall()

    async def _call(self, sql: str, *params: Any) -> list[Any]:
        return await asyncio.to_thread(self._run, sql, params)

    async def get(self, key: bytes) -> bytes | None:
        rows = await self._call(
            "SELECT value FROM bff_records WHERE key = ? AND expires_at > ?", key, self._now()
        )
        return bytes(rows[0][0]) if rows else None

    async def put(self, key: bytes, value: bytes, expires_at: int) -> None:
        await self._call(
            "INSERT INTO bff_records (key, value, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "expires_at = excluded.expires_at",
            key,
            value,
            expires_at,
        )
        self._writes += 1
        if self._writes % 100 == 0:  # expired records go now and then, not on every write
            await self._call("DELETE FROM bff_records WHERE expires_at <= ?", self._now())

    async def take(self, key: bytes) -> bytes | None:
        rows = await self._call(
            "DELETE FROM bff_records WHERE key = ? RETURNING value, expires_at", key
        )
        return bytes(rows[0][0]) if rows and rows[0][1] > self._now() else None

    async def delete(self, key: bytes) -> None:
        await self._call("DELETE FROM bff_records WHERE key = ?", key)

    def lock(self, key: bytes) -> asyncio.Lock:
        return self._locks.of(key)

    async def aclose(self) -> None:
        with self._mutex:
            self._db.close()

    def _now(self) -> int:
        return int(self._clock())


# Deletes the lock only if it is still ours (a lock that timed out may be another node's now).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"


class RedisStore:
    def __init__(
        self,
        client: Redis,
        prefix: str = "tokensmith:bff:",
        *,
        lock_seconds: float = 15.0,
        lock_wait: float = 20.0,
    ) -> None:
        self._redis = client
        self._prefix = prefix.encode()
        self._local = _LocalLocks()
        self.lock_seconds = lock_seconds
        self.lock_wait = lock_wait

    def _key(self, key: bytes) -> bytes:
        return self._prefix + key

    async def get(self, key: bytes) -> bytes | None:
        value = await self._call(lambda: self._redis.get(self._key(key)))
        return value if isinstance(value, bytes) else None

    async def put(self, key: bytes, value: bytes, expires_at: int) -> None:
        expires = max(expires_at, int(time.time()) + 1)
        await self._call(lambda: self._redis.set(self._key(key), value, exat=expires))

    async def take(self, key: bytes) -> bytes | None:
        value = await self._call(lambda: self._redis.getdel(self._key(key)))
        return value if isinstance(value, bytes) else None

    async def delete(self, key: bytes) -> None:
        await self._call(lambda: self._redis.delete(self._key(key)))

    @asynccontextmanager
    async def lock(self, key: bytes) -> AsyncIterator[None]:
        async with self._local.of(key):  # this node's waiters queue here, not in Redis
            name, token = self._key(b"lock:" + key), random_token(16)
            deadline = time.monotonic() + self.lock_wait
            ttl = int(self.lock_seconds * 1000)
            while not await self._call(lambda: self._redis.set(name, token, nx=True, px=ttl)):
                if time.monotonic() > deadline:
                    raise LockTimeout("the session is being refreshed elsewhere")
                await asyncio.sleep(0.02)
            try:
                yield
            finally:
                try:
                    await self._call(lambda: self._redis.eval(_RELEASE, 1, name, token))
                except StoreUnavailable:
                    # The work under the lock is done; the lock lapses by itself (lock_seconds).
                    log.warning("session lock left to expire: Redis unreachable")

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        # Imported here, as in open_store: a BFF on SQLite runs without the redis package.
        from tokensmith.adapters.redis_client import REDIS_ERRORS, forget_connections, unavailable

        try:
            return await operation()
        except REDIS_ERRORS as exc:
            if not unavailable(exc):
                raise  # a fault of ours: the app's server_error, logged
            forget_connections(self._redis)
            log.warning("session store unreachable", extra={"error": type(exc).__name__})
            raise StoreUnavailable("the session store is unreachable") from None


def open_store(url: str, redis_prefix: str = "tokensmith:bff:") -> Store:
    """The store a config's ``bff.store`` names (``config.py`` checked its form)."""
    if url.startswith("sqlite:///"):
        return SqliteStore(Path(url[len("sqlite:///") :]))
    from tokensmith.adapters.redis_client import open_redis  # only a Redis store needs redis

    return RedisStore(open_redis(url, REDIS_TIMEOUT), redis_prefix)
