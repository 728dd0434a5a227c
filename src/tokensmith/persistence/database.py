"""Engines for SQLite and PostgreSQL behind one URL, and the errors that mean "database down"."""

from __future__ import annotations

import os
import re
import sqlite3
import weakref
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import aiosqlite
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tokensmith.persistence.pg_timeouts import QUERY_CANCELED, asyncpg_connect_args

__all__ = [
    "DATABASE_ERRORS",
    "POOL_RECYCLE",
    "UNAVAILABLE_ERRORS",
    "create_engine",
    "describe_url",
    "driver_engine",
    "is_unavailable",
    "normalise_url",
    "ping",
    "sqlite_pragmas",
    "unbounded_engine",
]

# Seconds a PostgreSQL connection is kept before a new one replaces it (server or firewall limits).
POOL_RECYCLE = 1800

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# What a lost or refused database connection raises through SQLAlchemy and the drivers.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.DisconnectionError,
    sa.exc.TimeoutError,
    ConnectionError,
    OSError,
    TimeoutError,
)
# Any failure reported by the database or its driver, including the above.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (*UNAVAILABLE_ERRORS, sa.exc.DBAPIError)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is away (a lost or refused connection), so that the
    request may succeed if retried shortly; any other database error is a fault of its own."""
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return True  # TimeoutError among them: a call past TOKENSMITH_DATABASE_TIMEOUT
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    # The server ended a statement past its statement_timeout: the client's bound, server side.
    return exc.connection_invalidated or getattr(exc.orig, "sqlstate", None) == QUERY_CANCELED


async def ping(engine: AsyncEngine) -> None:
    """One ``SELECT 1``; raises one of ``DATABASE_ERRORS`` if the database does not answer."""
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))


def normalise_url(url: str) -> URL:
    """Accept the usual spellings and pick an async driver; raise ValueError on anything else."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError("not a database URL (e.g. sqlite:///var/tokensmith.db)") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite":
        if driver not in ("", "aiosqlite"):
            raise ValueError("SQLite is used through aiosqlite (sqlite+aiosqlite://)")
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        if driver in ("", "asyncpg"):
            return parsed.set(drivername="postgresql+asyncpg")
        if driver == "psycopg":
            return parsed.set(drivername="postgresql+psycopg")
        raise ValueError("PostgreSQL is used through asyncpg or psycopg (postgresql+asyncpg://)")
    raise ValueError(f"unsupported database {backend!r}: use SQLite or PostgreSQL")


def describe_url(url: URL) -> str:
    """The URL without its password, for messages and logs."""
    return url.render_as_string(hide_password=True)


def create_engine(
    url: URL, *, schema: str | None = None, pool_size: int = 10, timeout: float = 5.0
) -> AsyncEngine:
    """An engine for ``url``; on PostgreSQL each wait on the database (a connect, a call, a free
    pooled connection) is bounded by ``timeout`` seconds (pg_timeouts.py)."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, pool_size)
    if schema is not None and not _SCHEMA_NAME.match(schema):
        raise ValueError("a schema name is lower-case letters, digits and _")
    kwargs: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": pool_size,
        "pool_pre_ping": True,  # a connection broken while the database was away is replaced
        "pool_recycle": POOL_RECYCLE,
        "pool_timeout": timeout,
        "connect_args": _connect_args(url, schema, timeout, bound_statements=True),
    }
    engine = create_async_engine(url, **kwargs)
    _options[engine] = kwargs
    _made[engine] = (schema, timeout)
    return engine


def _connect_args(
    url: URL, schema: str | None, timeout: float, *, bound_statements: bool
) -> dict[str, Any]:
    if url.get_driver_name() == "asyncpg":
        return asyncpg_connect_args(timeout, schema, bound_statements=bound_statements)
    options = f"-cstatement_timeout={round(timeout * 1000) if bound_statements else 0}"
    if schema is not None:
        options += f" -csearch_path={schema}"
    # psycopg counts whole seconds, and waits at least two.
    return {"options": options, "connect_timeout": max(2, round(timeout))}


# What each PostgreSQL engine was made with, for the engines opened beside it.
_options: weakref.WeakKeyDictionary[AsyncEngine, dict[str, Any]] = weakref.WeakKeyDictionary()
_made: weakref.WeakKeyDictionary[AsyncEngine, tuple[str | None, float]] = (
    weakref.WeakKeyDictionary()
)


def unbounded_engine(engine: AsyncEngine) -> AsyncEngine | None:
    """A one-connection engine beside ``engine`` (made by ``create_engine``) for migrations,
    whose statements (an index on a large table) may rightly outlast ``DATABASE_TIMEOUT``: the
    connect stays bounded, statements are not. None on SQLite."""
    made = _made.get(engine)
    if made is None:
        return None
    schema, timeout = made
    connect_args = _connect_args(engine.url, schema, timeout, bound_statements=False)
    return create_async_engine(engine.url, poolclass=sa.NullPool, connect_args=connect_args)


def driver_engine(engine: AsyncEngine) -> AsyncEngine | None:
    """An engine beside ``engine`` (made by ``create_engine``) for the repositories' driver path
    (connections.py): the same database, settings and pool size, but no pre-ping. The pre-ping
    costs three round trips at every checkout (BEGIN, a ping, ROLLBACK); the driver path drops
    a connection whose socket closed instead. Its owner disposes of it with ``engine``."""
    options = _options.get(engine)
    if options is None:
        return None
    return create_async_engine(engine.url, **{**options, "pool_pre_ping": False})


def _sqlite_engine(url: URL, pool_size: int) -> AsyncEngine:
    database = url.database or ":memory:"
    if database != ":memory:":
        Path(os.path.dirname(os.path.abspath(database))).mkdir(parents=True, exist_ok=True)

    def connector() -> sqlite3.Connection:
        # Used by one coroutine at a time (the pool sees to it), maybe from another loop's thread.
        return sqlite3.connect(database, timeout=15, check_same_thread=False)

    async def inline_connection() -> aiosqlite.Connection:
        return await _InlineConnection(connector)

    # Kept connections matter: a new one costs a connect and four PRAGMAs. SQLAlchemy returns a
    # connection to the pool in a task of its own, so even calls that never wait overlap.
    # An in-memory database lives in its one connection (SQLAlchemy's StaticPool).
    sizes = {} if database == ":memory:" else {"pool_size": pool_size, "max_overflow": pool_size}
    engine = create_async_engine(url, async_creator=inline_connection, **sizes)

    event.listen(engine.sync_engine, "connect", sqlite_pragmas)
    return engine


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Set on every new SQLite connection, whichever engine opened it."""
    # WAL lets readers run beside the single writer; IMMEDIATE-style waits use busy_timeout.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Reads through the OS page cache, shared by every connection, instead of a read() per page;
    # and a page cache of 16 MiB instead of 2: with millions of tokens, lookups and inserts by
    # random hashes touch pages all over their indexes.
    cursor.execute("PRAGMA mmap_size=268435456")
    cursor.execute("PRAGMA cache_size=-16384")
    cursor.close()


class _InlineTx:
    """Stands in for aiosqlite's queue to its thread: runs the call at once, settles the future."""

    @staticmethod
    def put_nowait(item: tuple[Any, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # handed to the awaiting caller, like aiosqlite does
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(result)


class _InlineConnection(aiosqlite.Connection):
    """aiosqlite's interface with every call run where it is awaited, on the event loop's thread.

    aiosqlite hands each call (cursor, execute, fetch, close, commit, rollback) to a thread of its
    own; under load every hand-off waits for the GIL, and one SELECT is five of them. A call on a
    local SQLite file takes microseconds, less than one hand-off, so running it in place is faster
    (see docs/performance.md). The price: a write that waits for another process's lock waits in
    the event loop (busy_timeout), which is why more than one node means PostgreSQL.
    """

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _InlineTx()  # type: ignore[assignment]

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect().__await__()  # no worker thread to start

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")  # what aiosqlite says, and SQLAlchemy maps
        return fn(*args, **kwargs)

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None
