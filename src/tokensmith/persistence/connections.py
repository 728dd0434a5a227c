"""How repositories reach the database: one interface, the fastest path each database allows.

Repositories write ``async with self.db.begin() as conn: await conn.execute(...)``. Behind it:

- **PostgreSQL**: SQLAlchemy's async engine (asyncpg or psycopg), unchanged.
- **A SQLite file**: SQLAlchemy's *blocking* engine on the standard ``sqlite3`` driver, called
  in place on the event loop. SQLite is a library, not a server: a statement on a local file
  takes microseconds, while the async engine's machinery around it (a greenlet switch per driver
  call, an adapted pool, aiosqlite's wrappers) costs about 250 µs of CPU per statement here. The
  price is the one ``database.py`` already pays: a write that waits for another process's lock
  waits in the event loop (``busy_timeout``), which is why more than one node means PostgreSQL.
  Because no call yields to the event loop, a transaction here is never interleaved with another
  request's in the same process.

The async engine stays what migrations, health checks and tests use; for a SQLite file both
engines open the same file, with the same pragmas. An in-memory SQLite database lives in one
connection, so it keeps the async engine.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import AsyncIterator
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, CursorResult, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.base import Executable

from tokensmith.persistence.database import sqlite_pragmas

__all__ = ["Conn", "Connections", "close_connections", "connections_for"]


class Conn(Protocol):
    """What a repository does with a connection."""

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]: ...

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any: ...

    async def rollback(self) -> None: ...

    async def insert_many(
        self, table: sa.Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        """A plain multi-row INSERT of ready driver values (no type processing), for batches."""
        ...


class Connections(Protocol):
    @property
    def sync_engine(self) -> Engine:
        """The engine whose events see every statement sent (for tests and instrumentation)."""
        ...

    def begin(self) -> contextlib.AbstractAsyncContextManager[Conn]:
        """A connection in a transaction, committed on leaving (rolled back on an error)."""
        ...

    def connect(self) -> contextlib.AbstractAsyncContextManager[Conn]:
        """A connection for reads; nothing is committed."""
        ...


_by_engine: weakref.WeakKeyDictionary[AsyncEngine, Connections] = weakref.WeakKeyDictionary()


def connections_for(engine: AsyncEngine) -> Connections:
    """The connections every repository on ``engine`` shares (one pool per engine)."""
    found = _by_engine.get(engine)
    if found is None:
        url = engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            found = _InlineConnections(engine)
        else:
            found = _AsyncConnections(engine)
        _by_engine[engine] = found
    return found


def close_connections(engine: AsyncEngine) -> None:
    """Close what ``connections_for`` opened beside ``engine`` (before disposing of it)."""
    found = _by_engine.pop(engine, None)
    if isinstance(found, _InlineConnections):
        found.dispose()


class _AsyncConnections:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def sync_engine(self) -> Engine:
        return self._engine.sync_engine

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[Conn]:
        async with self._engine.begin() as conn:
            yield _AsyncConn(conn)

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[Conn]:
        async with self._engine.connect() as conn:
            yield _AsyncConn(conn)


class _AsyncConn:
    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        return await self._conn.execute(statement, parameters)

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        return await self._conn.scalar(statement, parameters)

    async def rollback(self) -> None:
        await self._conn.rollback()

    async def insert_many(
        self, table: sa.Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        dialect = self._conn.dialect
        await self._conn.exec_driver_sql(
            _insert_sql(table, columns, dialect), _driver_rows(dialect, columns, rows)
        )


class _InlineConnections:
    def __init__(self, engine: AsyncEngine) -> None:
        database = engine.url.database
        assert database is not None
        pool = engine.pool.size() if isinstance(engine.pool, sa.pool.QueuePool) else 5
        self._engine: Engine = sa.create_engine(
            sa.engine.URL.create("sqlite", database=database),
            connect_args={"timeout": 15, "check_same_thread": False},
            pool_size=pool,
            max_overflow=pool,
        )
        sa.event.listen(self._engine, "connect", sqlite_pragmas)
        # Disposed with the async engine it stands beside, if close_connections was not called.
        weakref.finalize(engine, self._engine.dispose)

    @property
    def sync_engine(self) -> Engine:
        return self._engine

    def dispose(self) -> None:
        self._engine.dispose()

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[Conn]:
        with self._engine.begin() as conn:
            yield _InlineConn(conn)

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[Conn]:
        with self._engine.connect() as conn:
            yield _InlineConn(conn)


class _InlineConn:
    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        return self._conn.execute(statement, parameters)

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        return self._conn.scalar(statement, parameters)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def insert_many(
        self, table: sa.Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        dialect = self._conn.dialect
        self._conn.exec_driver_sql(
            _insert_sql(table, columns, dialect), _driver_rows(dialect, columns, rows)
        )


@functools.lru_cache(maxsize=32)
def _insert_sql(table: sa.Table, columns: tuple[str, ...], dialect: sa.Dialect) -> str:
    """The INSERT as the driver takes it, its parameters in ``columns`` order (positional styles:
    qmark for sqlite3, $n for asyncpg) or named like the columns (psycopg)."""
    compiled = sa.insert(table).inline().compile(dialect=dialect, column_keys=list(columns))
    if compiled.positional and tuple(compiled.positiontup or ()) != columns:
        raise ValueError(f"{dialect.name}: unexpected parameter order")
    return str(compiled)


def _driver_rows(
    dialect: sa.Dialect, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> list[Any]:
    if dialect.positional:
        return rows
    return [dict(zip(columns, row, strict=True)) for row in rows]
