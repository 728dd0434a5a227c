"""Repositories on a SQLite file: hot statements straight on ``sqlite3``, in place.

SQLite is a library, not a server: a statement on a local file takes microseconds, so it runs
where it is awaited, on the event loop (no thread hand-off, no greenlet). The connections come
from SQLAlchemy's blocking engine on the same file (its pool, the pragmas of
``database.sqlite_pragmas``, the busy timeout); each ``begin()`` or ``connect()`` holds one,
kept checked out between uses (up to the pool size) when no transaction is left open on it.

A statement with a plan (statements.py) is sent to the ``sqlite3`` connection itself: about
17 µs instead of about 70 through SQLAlchemy. Any other statement goes through SQLAlchemy on
the same connection, so both share one transaction, which behaves as it did through
SQLAlchemy alone: ``sqlite3``'s own transaction handling (SQLAlchemy's pysqlite dialect keeps
it), a deferred BEGIN before the first INSERT/UPDATE/DELETE, a commit on leaving ``begin()``,
a rollback on an error and on leaving ``connect()``. Since no call yields to the event loop, a
transaction here is never interleaved with another request's in the same process; a write that
waits for another process's lock waits in the event loop (``busy_timeout``), which is why more
than one node means PostgreSQL.

With an event listener on ``sync_engine`` (tests counting statements), every statement goes
through SQLAlchemy, so that the listener sees each one.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.base import Executable

from tokensmith.persistence.checkpoints import Checkpointer, leave_checkpoints_to_the_thread
from tokensmith.persistence.database import sqlite_pragmas
from tokensmith.persistence.driver_errors import as_sqlalchemy_error
from tokensmith.persistence.results import Result, Rows
from tokensmith.persistence.single_statement import ANY, ONE, counted
from tokensmith.persistence.statements import Plan, Plans, insert_sql, listened

__all__ = ["SqliteConnections"]


class SqliteConnections:
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
        sa.event.listen(self._engine, "connect", leave_checkpoints_to_the_thread)
        self._checkpointer = Checkpointer(database)
        self._checkpointer.start()
        self._plans = Plans(self._engine.dialect)
        self._keep = pool
        # Connections kept checked out of SQLAlchemy's pool between uses: taking one back costs
        # no pool lock and no reset.
        self._idle: list[Connection] = []
        # Disposed with the async engine it stands beside, if close_connections was not called.
        weakref.finalize(engine, _dispose, self._idle, self._engine, self._checkpointer)

    @property
    def sync_engine(self) -> Engine:
        return self._engine

    def dispose(self) -> None:
        _dispose(self._idle, self._engine, self._checkpointer)

    def begin(self) -> SqliteConn:
        return SqliteConn(self, self._plans, commit=True)

    def connect(self) -> SqliteConn:
        return SqliteConn(self, self._plans, commit=False)

    def single(self) -> SqliteConn:
        # sqlite3 begins before the write and commits on leaving, as in begin(): the same cost.
        return SqliteConn(self, self._plans, commit=True, single=True)

    def checkout(self) -> Connection:
        """A kept connection, else SQLAlchemy's checkout (its pool, pragmas on a new
        connection, its errors if none)."""
        return self._idle.pop() if self._idle else self._engine.connect()

    def checkin(self, conn: Connection, driver: sqlite3.Connection) -> None:
        """Keep ``conn`` if it is clean (no transaction open on it), else return it to the pool,
        whose reset rolls back what is still open."""
        if (
            len(self._idle) < self._keep
            and not conn.invalidated
            and not conn.in_transaction()
            and not driver.in_transaction
        ):
            self._idle.append(conn)
        else:
            conn.close()


def _dispose(idle: list[Connection], engine: Engine, checkpointer: Checkpointer) -> None:
    checkpointer.stop()
    while idle:
        idle.pop().close()
    engine.dispose()


class SqliteConn:
    """One pooled connection for one ``async with``; a transaction if made by ``begin()``."""

    __slots__ = ("_commit", "_conn", "_driver", "_left", "_owner", "_plans", "_via_sqlalchemy")

    _conn: Connection
    _driver: sqlite3.Connection

    def __init__(
        self, owner: SqliteConnections, plans: Plans, *, commit: bool, single: bool = False
    ) -> None:
        self._owner = owner
        self._plans = plans
        self._commit = commit
        self._left = ONE if single else ANY

    async def __aenter__(self) -> Self:
        conn = self._conn = self._owner.checkout()
        self._driver = conn.connection.dbapi_connection  # type: ignore[assignment]
        self._via_sqlalchemy = listened(conn)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        conn = self._conn
        try:
            if exc_type is None and self._commit:
                if conn.in_transaction():  # begun by a statement SQLAlchemy ran: it commits
                    conn.commit()
                else:
                    self._call(self._driver.commit, "COMMIT")
        except BaseException:
            conn.close()  # returned to the pool, whose reset rolls back
            raise
        if exc_type is None:
            self._owner.checkin(conn, self._driver)
        else:
            conn.close()

    async def execute(self, statement: Executable, parameters: Any = None) -> Result:
        if self._left != ANY:
            self._left = counted(self._left)
        planned = None if self._via_sqlalchemy else self._plans.for_call(statement, parameters)
        if planned is not None:
            return self._run(*planned)
        return self._conn.execute(statement, parameters)

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        return (await self.execute(statement, parameters)).scalar()

    async def rollback(self) -> None:
        if self._left != ANY:
            self._left = counted(self._left)
        if self._conn.in_transaction():
            self._conn.rollback()
        self._call(self._driver.rollback, "ROLLBACK")

    async def insert_many(
        self, table: sa.Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        if self._left != ANY:
            self._left = counted(self._left)
        sql = insert_sql(table, columns, self._conn.dialect)
        if self._via_sqlalchemy:
            self._conn.exec_driver_sql(sql, rows)
            return
        try:
            self._driver.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise self._failed(exc, sql, rows, many=True) from exc

    def _run(self, plan: Plan, parameters: Mapping[str, Any]) -> Rows:
        arguments = plan.arguments(parameters)
        try:
            cursor = self._driver.execute(plan.sql, arguments)
            fetched = cursor.fetchall() if plan.returns_rows else None
        except sqlite3.Error as exc:
            raise self._failed(exc, plan.sql, arguments) from exc
        result = Rows(plan.rows(fetched) if fetched is not None else [], cursor.rowcount)
        cursor.close()
        return result

    def _call(self, method: Any, name: str) -> None:
        try:
            method()
        except sqlite3.Error as exc:
            raise self._failed(exc, name, ()) from exc

    def _failed(
        self, exc: sqlite3.Error, sql: str, parameters: Any, *, many: bool = False
    ) -> sa.exc.StatementError:
        error = as_sqlalchemy_error(exc, sql, parameters, self._conn, many=many)
        if _invalidated(error):
            self._conn.invalidate(exc)
        return error


def _invalidated(error: sa.exc.StatementError) -> bool:
    return isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated
