"""Repositories on PostgreSQL: hot statements straight on ``asyncpg``.

Through SQLAlchemy's async engine, each statement costs a greenlet switch per driver call and
SQLAlchemy's execution bookkeeping, and each checkout a pre-ping of three round trips (BEGIN, a
ping, ROLLBACK). Here the connections come from an engine beside the application's
(``database.driver_engine``: same URL, search_path, timeouts and pool size, no pre-ping), one
per ``begin()`` or ``connect()``, kept checked out between uses (up to the pool size, and for
at most ``POOL_RECYCLE`` seconds) so that taking one costs no greenlet switch; a statement with
a plan (statements.py) goes to the ``asyncpg`` connection itself, where asyncpg prepares it once
and keeps it (its statement cache, per connection).

Transactions are SQLAlchemy's asyncpg adapter's, so a statement without a plan, sent through
SQLAlchemy on the same connection, joins the same one: ``begin()`` starts it before its first
statement (the adapter's own BEGIN, with its isolation settings) and commits on leaving;
``connect()`` reads without one (under READ COMMITTED, a transaction would give each statement
its own snapshot all the same, for two more round trips); ``single()`` sends its one statement
without BEGIN and COMMIT, one round trip where ``begin()`` takes three: a lone statement is
atomic by itself (an ``executemany`` too, since asyncpg 0.22), and one sent through SQLAlchemy
begins a transaction that the block commits. A connection left with a transaction
open (an error, or a statement through SQLAlchemy in a ``connect()``) goes back to SQLAlchemy's
pool, whose reset rolls it back.

Instead of the pre-ping: a kept or pooled connection whose socket closed (the database
restarted or went away) is dropped for another at checkout, and a connection that turns out
lost at its first call (BEGIN, a read, anything in a transaction) is replaced once, which is
safe because nothing was done on it; a ``single()`` write lost on the way is not sent again, as
it may have been committed. Errors are SQLAlchemy's (driver_errors.py), and a lost
connection is invalidated as SQLAlchemy would.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.base import Executable
from sqlalchemy.util import greenlet_spawn

from tokensmith.persistence.database import POOL_RECYCLE
from tokensmith.persistence.driver_errors import as_sqlalchemy_error
from tokensmith.persistence.results import Result, Rows
from tokensmith.persistence.single_statement import ANY, ONE, counted
from tokensmith.persistence.statements import Plan, Plans, insert_sql, listened

__all__ = ["AsyncpgConnections"]

# In Connection.info, which lives as long as the database connection: when it was first handed out.
_SINCE = "tokensmith.connected_at"
# How SQLAlchemy's adapter reads a row count from asyncpg's status (e.g. "UPDATE 1").
_COUNT = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+) (\d+)")


class AsyncpgConnections:
    def __init__(self, engine: AsyncEngine, beside: AsyncEngine) -> None:
        """Connections of ``engine``, the one ``database.driver_engine`` opened ``beside`` the
        application's; disposed with it."""
        self._engine = engine
        self._sync = engine.sync_engine
        self._plans = Plans(self._sync.dialect)
        pool = self._sync.pool
        self._keep = pool.size() if isinstance(pool, sa.QueuePool) else 0
        # Connections kept checked out of SQLAlchemy's pool between uses, each with the time it
        # was checked out: taking one back needs no greenlet, no pool lock, no reset.
        self._idle: list[tuple[Connection, float]] = []
        sa.event.listen(beside.sync_engine, "engine_disposed", self._dispose)

    @property
    def sync_engine(self) -> Engine:
        return self._sync

    def begin(self) -> AsyncpgConn:
        return AsyncpgConn(self, self._plans, transaction=True)

    def connect(self) -> AsyncpgConn:
        return AsyncpgConn(self, self._plans, transaction=False)

    def single(self) -> AsyncpgConn:
        return AsyncpgConn(self, self._plans, transaction=False, single=True)

    async def checkout(self) -> Connection:
        """A kept connection, else SQLAlchemy's checkout (its pool, connect errors, recycling),
        less the pre-ping: a connection whose socket closed is dropped for another."""
        while self._idle:
            conn, since = self._idle.pop()
            driver: Any = conn.connection.driver_connection
            if driver.is_closed():
                await greenlet_spawn(_discard, conn)
            elif time.monotonic() - since > POOL_RECYCLE:
                await greenlet_spawn(conn.close)  # SQLAlchemy's pool recycles it
            else:
                return conn
        pool = self._sync.pool
        idle = pool.checkedin() if isinstance(pool, sa.QueuePool) else 0
        for _ in range(idle + 1):  # each idle connection at most once, then a new one
            conn = await greenlet_spawn(self._sync.connect)
            driver = conn.connection.driver_connection
            if not driver.is_closed():
                conn.info.setdefault(_SINCE, time.monotonic())
                return conn
            await greenlet_spawn(_discard, conn)
        return await greenlet_spawn(self._sync.connect)

    async def checkin(self, conn: Connection, adapter: Any) -> None:
        """Keep ``conn`` if it is clean (no transaction open on it), else return it to the pool,
        whose reset rolls back what is still open."""
        if (
            len(self._idle) < self._keep
            and not conn.invalidated
            and not conn.in_transaction()
            and adapter._transaction is None
        ):
            self._idle.append((conn, conn.info.setdefault(_SINCE, time.monotonic())))
            return
        await greenlet_spawn(conn.close)

    def _dispose(self, _engine: Engine) -> None:  # in the greenlet of the engine's dispose()
        while self._idle:
            self._idle.pop()[0].close()
        self._sync.dispose()


def _discard(conn: Connection) -> None:
    conn.invalidate()
    conn.close()


class AsyncpgConn:
    """One pooled connection for one ``async with``; a transaction if made by ``begin()``."""

    __slots__ = (
        "_adapter",
        "_conn",
        "_driver",
        "_fresh",
        "_left",
        "_owner",
        "_plans",
        "_transaction",
        "_via_sqlalchemy",
    )

    _conn: Connection
    _adapter: Any  # SQLAlchemy's AsyncAdapt_asyncpg_connection
    _driver: Any  # the asyncpg.Connection

    def __init__(
        self, owner: AsyncpgConnections, plans: Plans, *, transaction: bool, single: bool = False
    ) -> None:
        self._owner = owner
        self._plans = plans
        self._transaction = transaction
        self._left = ONE if single else ANY

    async def __aenter__(self) -> Self:
        self._use(await self._owner.checkout())
        return self

    def _use(self, conn: Connection) -> None:
        self._conn = conn
        fairy = conn.connection
        self._adapter = fairy.dbapi_connection
        self._driver = fairy.driver_connection
        self._fresh = True  # nothing sent yet: if it is lost, another one may stand in
        self._via_sqlalchemy = listened(conn)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            # A single() commits what SQLAlchemy began for it (its own statements autobegin).
            if exc_type is None and (self._transaction or self._left != ANY):
                await self._commit()
        except BaseException:
            await greenlet_spawn(self._conn.close)  # the pool's reset rolls back
            raise
        if exc_type is None:
            await self._owner.checkin(self._conn, self._adapter)
        elif self._driver.is_closed():  # lost, or dropped as its call timed out: no reset
            await greenlet_spawn(_discard, self._conn)
        else:
            await greenlet_spawn(self._conn.close)

    async def execute(self, statement: Executable, parameters: Any = None) -> Result:
        if self._left != ANY:
            self._left = counted(self._left)
        planned = None if self._via_sqlalchemy else self._plans.for_call(statement, parameters)
        if planned is not None:
            return await self._run(*planned)
        fresh, self._fresh = self._fresh, False
        try:
            result: Result = await greenlet_spawn(self._conn.execute, statement, parameters)
        except sa.exc.DBAPIError as exc:
            lost = exc.connection_invalidated and self._repeatable(statement)
            if not (fresh and (lost or _unsent(exc))):
                raise
            await self._replace()
            result = await greenlet_spawn(self._conn.execute, statement, parameters)
        return result

    def _repeatable(self, statement: Executable) -> bool:
        """Whether a first call that found the connection lost may be sent again on another:
        a read, or anything in a transaction (a lost one was never committed)."""
        return self._transaction or isinstance(statement, sa.Select)

    async def _replace(self) -> None:
        # Lost before anything was done on it: the pre-ping's job, done on demand.
        await greenlet_spawn(_discard, self._conn)
        self._use(await self._owner.checkout())
        self._fresh = False

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        return (await self.execute(statement, parameters)).scalar()

    async def rollback(self) -> None:
        if self._left != ANY:
            self._left = counted(self._left)
        if self._conn.in_transaction():
            await greenlet_spawn(self._conn.rollback)
        transaction = self._adapter._transaction
        if transaction is not None:
            self._adapter._transaction = None  # over either way, as in the adapter's rollback
            await self._call(transaction.rollback, "ROLLBACK", ())

    async def insert_many(
        self, table: sa.Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        if self._left != ANY:
            self._left = counted(self._left)
        sql = insert_sql(table, columns, self._conn.dialect)
        if self._via_sqlalchemy:
            self._fresh = False
            await greenlet_spawn(self._conn.exec_driver_sql, sql, rows)
            return
        await self._begun()
        await self._call(lambda: self._driver.executemany(sql, rows), sql, rows, many=True)

    async def _run(self, plan: Plan, parameters: Mapping[str, Any]) -> Rows:
        arguments = plan.arguments(parameters)
        await self._begun()
        if plan.returns_rows:
            # A read is the first call of a connect(): safe to repeat on another connection.
            fetched = await self._call(
                lambda: self._driver.fetch(plan.sql, *arguments),
                plan.sql,
                arguments,
                repeatable=self._transaction or plan.is_select,
            )
            return Rows(plan.rows(fetched), len(fetched))
        status = await self._call(
            lambda: self._driver.execute(plan.sql, *arguments), plan.sql, arguments
        )
        found = _COUNT.match(status or "")
        return Rows([], int(found.group(1)) if found else -1)

    async def _begun(self) -> None:
        """The transaction of a begin(), started before its first statement."""
        if self._transaction and self._adapter._transaction is None:
            # The adapter's BEGIN raises its DBAPI's errors; nothing is done if it fails.
            await self._call(
                lambda: self._adapter._start_transaction(), "BEGIN", (), repeatable=True
            )

    async def _commit(self) -> None:
        if self._conn.in_transaction():  # begun by a statement SQLAlchemy ran: it commits
            await greenlet_spawn(self._conn.commit)
            return
        transaction = self._adapter._transaction
        if transaction is not None:
            self._adapter._transaction = None  # over either way, as in the adapter's commit
            await self._call(transaction.commit, "COMMIT", ())

    async def _call(
        self,
        call: Callable[[], Awaitable[Any]],
        sql: str,
        parameters: Any,
        *,
        many: bool = False,
        repeatable: bool = False,
    ) -> Any:
        try:
            result = await call()
        except Exception as exc:
            error = await self._failed(exc, sql, parameters, many)
            if not (self._fresh and ((repeatable and _lost(error)) or _unsent(exc))):
                raise error from exc
            await self._replace()
            try:
                result = await call()
            except Exception as again:
                raise await self._failed(again, sql, parameters, many) from again
        self._fresh = False
        return result

    async def _failed(self, exc: Exception, sql: str, parameters: Any, many: bool) -> BaseException:
        dbapi_error = self._conn.dialect.loaded_dbapi.Error
        if not isinstance(exc, dbapi_error):
            try:
                self._adapter._handle_exception(exc)  # asyncpg's errors as its DBAPI's
            except dbapi_error as translated:
                exc = translated
            except Exception as other:  # not a database error (OSError, a timeout): as it is
                if self._driver.is_closed():
                    await greenlet_spawn(self._conn.invalidate, other)
                return other
        error = as_sqlalchemy_error(exc, sql, list(parameters), self._conn, many=many)
        if _lost(error):
            await greenlet_spawn(self._conn.invalidate, exc)
        return error


def _unsent(exc: BaseException) -> bool:
    """Whether asyncpg refused the call before sending anything: its protocol is not idle (it
    took in the server's goodbye on a connection the server dropped, and has not yet seen the
    socket close), or the connection is known closed. Safe to send on another connection, even
    a lone write of single() that may not be repeated once it went out."""
    seen: BaseException | None = exc
    for _ in range(4):  # SQLAlchemy's error, its DBAPI's, asyncpg's
        if seen is None:
            return False
        kind, text = type(seen), str(seen)
        if kind.__module__.startswith("asyncpg."):  # asyncpg's own (imported lazily: extras)
            if kind.__name__ == "InternalClientError" and text.startswith("cannot switch to"):
                return True
            if kind.__name__ == "InterfaceError" and text == "connection is closed":
                return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def _lost(error: BaseException) -> bool:
    """Whether the connection was found lost, so that a first call may go to another one; not
    a call that timed out (TimeoutError is an OSError): its wait is spent, and it may have run."""
    if isinstance(error, sa.exc.DBAPIError):
        return error.connection_invalidated
    return isinstance(error, OSError) and not isinstance(error, TimeoutError)
