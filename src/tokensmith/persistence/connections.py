"""How repositories reach the database: one interface, the fastest path each database allows.

Repositories write ``async with self.db.begin() as conn: await conn.execute(...)`` and read the
result as SQLAlchemy's (``first()``, ``one()``, ``rowcount``, ``row._mapping``...); a block of
one write says so with ``single()`` instead of ``begin()``. Behind it:

- **A SQLite file** (sqlite_driver.py): connections of SQLAlchemy's *blocking* engine, called
  in place on the event loop, with hot statements sent to ``sqlite3`` itself.
- **PostgreSQL on asyncpg** (asyncpg_driver.py): connections of an engine beside the
  application's, without pre-ping, with hot statements sent to ``asyncpg`` itself.
- **Anything else** (an in-memory SQLite database, which lives in one connection; psycopg; an
  engine not made by ``database.create_engine``): SQLAlchemy's async engine, unchanged.

A hot statement is one built once at import (statements.py compiles it once, with SQLAlchemy's
type processing); every other statement goes through SQLAlchemy on the same connection and in
the same transaction. Errors are SQLAlchemy's either way (driver_errors.py). The async engine
stays what migrations, health checks and tests use.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import AsyncIterator
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.base import Executable

from tokensmith.persistence.asyncpg_driver import AsyncpgConnections
from tokensmith.persistence.database import driver_engine
from tokensmith.persistence.results import Result
from tokensmith.persistence.single_statement import ANY, ONE, counted
from tokensmith.persistence.sqlite_driver import SqliteConnections
from tokensmith.persistence.statements import insert_sql

__all__ = ["Conn", "Connections", "Result", "close_connections", "connections_for"]


class Conn(Protocol):
    """What a repository does with a connection."""

    async def execute(self, statement: Executable, parameters: Any = None) -> Result: ...

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

    def single(self) -> contextlib.AbstractAsyncContextManager[Conn]:
        """A connection for one statement, committed as ``begin()`` would; a second statement
        (or a rollback, which could not undo the first) is refused before it is sent.

        One statement is atomic by itself, so where the database commits a lone statement on
        its own (PostgreSQL) it goes without BEGIN and COMMIT: one round trip instead of three.
        """
        ...


_by_engine: weakref.WeakKeyDictionary[AsyncEngine, Connections] = weakref.WeakKeyDictionary()


def connections_for(engine: AsyncEngine) -> Connections:
    """The connections every repository on ``engine`` shares (one pool per engine)."""
    found = _by_engine.get(engine)
    if found is None:
        url = engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            found = SqliteConnections(engine)
        elif url.get_driver_name() == "asyncpg" and (beside := driver_engine(engine)):
            found = AsyncpgConnections(beside, engine)
        else:
            found = _AsyncConnections(engine)
        _by_engine[engine] = found
    return found


def close_connections(engine: AsyncEngine) -> None:
    """Close what ``connections_for`` opened beside ``engine`` (before disposing of it; the
    PostgreSQL pool beside it closes when ``engine`` is disposed)."""
    found = _by_engine.pop(engine, None)
    if isinstance(found, SqliteConnections):
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

    @contextlib.asynccontextmanager
    async def single(self) -> AsyncIterator[Conn]:
        async with self._engine.begin() as conn:  # a transaction all the same: it is rare here
            yield _AsyncConn(conn, single=True)


class _AsyncConn:
    __slots__ = ("_conn", "_left")

    def __init__(self, conn: AsyncConnection, *, single: bool = False) -> None:
        self._conn = conn
        self._left = ONE if single else ANY

    async def execute(self, statement: Executable, parameters: Any = None) -> Result:
        self._left = counted(self._left)
        return await self._conn.execute(statement, parameters)

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        self._left = counted(self._left)
        return await self._conn.scalar(statement, parameters)

    async def rollback(self) -> None:
        self._left = counted(self._left)
        await self._conn.rollback()

    async def insert_many(
        self, table: sa.Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        self._left = counted(self._left)
        dialect = self._conn.dialect
        await self._conn.exec_driver_sql(
            insert_sql(table, columns, dialect), _driver_rows(dialect, columns, rows)
        )


def _driver_rows(
    dialect: sa.Dialect, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> list[Any]:
    if dialect.positional:
        return rows
    return [dict(zip(columns, row, strict=True)) for row in rows]
