"""The Redis client of every part that uses Redis, and the one answer to "is Redis unavailable?".

How long a call may take is bounded by the timeout alone: no retries inside redis-py (a client
built with ``Redis(...)`` retries a failed command ten times with backoff, one built from a URL
not at all; here it is said once, for both), a connect and each read or write given ``timeout``.
What a caller does when Redis is away is its own: rate limits fall back to this node
(``redis_limits.py``), DPoP replay records refuse (``redis_replay.py``), the BFF answers 503.

Two things redis-py leaves to its caller:

- A pooled connection whose peer closed it is handed out again. redis-py looks for an end of
  stream only, and skips even that with its maintenance notifications, which 8.x turns on with
  RESP3; and a reset leaves an error on the stream, not an end. The next command on such a
  connection fails at once: "Connection closed by server" after Redis closed it (a restart, its
  idle timeout, CLIENT KILL), and after a reset ``ConnectionError`` under asyncio's loop or a bare
  ``RuntimeError`` ("unable to perform operation on <TCPTransport closed=True>") under uvloop.
  So every connection open at an outage failed one request after Redis was back, on an idle node
  too. The pool here reconnects such a connection before anything is sent on it.
- A connection that died without a word (its host gone, a firewall's state lost) is found only by
  using it. After any failure the pool reconnects every connection it had before, so an outage
  costs one failed call per node, not one per pooled connection.
"""

from __future__ import annotations

import weakref
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    ClusterDownError,
    InvalidResponse,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = [
    "REDIS_ERRORS",
    "FreshPool",
    "forget_connections",
    "never_sent",
    "open_redis",
    "unavailable",
]

# What a call to Redis may raise when Redis is away: redis-py's own errors, socket errors that
# escape them, timeouts, and uvloop's RuntimeError for a transport already closed. Catch these,
# then ask ``unavailable``: most of them can be a fault of ours too, which no fallback may hide.
REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError, TimeoutError, RuntimeError)
_CLOSED_TRANSPORT = "unable to perform operation on"  # uvloop's words, on a closed handle
# Redis is there but cannot serve: loading, a replica or a failover, out of memory, a busy
# script, a failing disk. (redis-py turns ERR "max number of clients" into ConnectionError.)
_SERVER_UNABLE = (ReadOnlyError, OutOfMemoryError, ClusterDownError, TryAgainError)
_SERVER_UNABLE_CODES = ("BUSY ", "MISCONF ", "NOREPLICAS ")


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc``, raised by a Redis call, means Redis cannot be used now (refused, reset,
    timed out, closed, or answering that it cannot serve) rather than a fault of ours: a script
    error, a wrong type, a misuse of redis-py, a RuntimeError of the loop's own."""
    if isinstance(exc, RuntimeError):
        return _CLOSED_TRANSPORT in str(exc)
    if isinstance(
        exc, (RedisConnectionError, RedisTimeoutError, InvalidResponse, OSError, TimeoutError)
    ):
        return True  # ConnectionError covers BusyLoadingError and AuthenticationError too
    if isinstance(exc, ResponseError):
        return isinstance(exc, _SERVER_UNABLE) or str(exc).startswith(_SERVER_UNABLE_CODES)
    return False


def never_sent(exc: BaseException) -> bool:
    """Whether the failed call certainly never reached Redis: no connection could be made, or
    the connection was closed before the command was written (uvloop refuses the write)."""
    text = str(exc)
    return "connecting to" in text or (isinstance(exc, RuntimeError) and _CLOSED_TRANSPORT in text)


class FreshPool(aioredis.ConnectionPool):
    """redis-py's pool, which never hands out a connection closed under it or opened before the
    last failure (see the module's docstring); ``forget`` marks that failure."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._generation = 0
        self._born: weakref.WeakKeyDictionary[AbstractConnection, int] = weakref.WeakKeyDictionary()

    def forget(self) -> None:
        """Reconnect every connection open now before its next use. (Each is reconnected by the
        task that takes it next, never under another task's command.)"""
        self._generation += 1

    async def ensure_connection(self, connection: AbstractConnection) -> None:
        if connection.is_connected and self._stale(connection):
            await connection.disconnect(nowait=True)
        await super().ensure_connection(connection)
        self._born[connection] = self._generation

    def _stale(self, connection: AbstractConnection) -> bool:
        if self._born.get(connection, self._generation) != self._generation:
            return True
        # redis-py keeps the streams private; without them, nothing is known to be wrong.
        reader = getattr(connection, "_reader", None)
        writer = getattr(connection, "_writer", None)
        ended = reader is not None and (reader.at_eof() or reader.exception() is not None)
        transport = getattr(writer, "transport", None)
        return ended or (transport is not None and bool(transport.is_closing()))


def open_redis(url: str, timeout: float) -> aioredis.Redis:
    """A client for ``url`` whose every call gives up after about ``timeout`` per step (connect,
    write, read), and never retries by itself."""
    pool = FreshPool.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
    return aioredis.Redis.from_pool(pool)


def forget_connections(client: aioredis.Redis) -> None:
    """After a failure: ``client``'s pool reconnects what it has open before using it again (a
    client not made by ``open_redis``, a test's say, keeps redis-py's own pool and ways)."""
    pool = client.connection_pool
    if isinstance(pool, FreshPool):
        pool.forget()
