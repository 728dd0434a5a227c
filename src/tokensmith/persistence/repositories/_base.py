"""What every repository shares: an engine, and row-to-record mapping."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.base import Executable

from tokensmith.oauth.transactions import Transaction
from tokensmith.persistence.connections import Conn, Connections, connections_for

__all__ = [
    "PURGE_BATCH",
    "GuardFailed",
    "Repository",
    "SqlTransaction",
    "as_dict",
    "batch_delete",
    "columns_of",
    "is_duplicate",
    "select_by",
    "values_of",
]

PURGE_BATCH = 1000  # rows per purge statement: short transactions, short locks


class GuardFailed(Exception):
    """A guard of a ``SqlTransaction`` found no row: the transaction is rolled back."""


class SqlTransaction:
    """``oauth.transactions.Transaction`` on one database: statements kept until the commit.

    Writes run in the order they were added, then the guards; a guard is a query that must find
    a row (one that locks it, where the database can, so that a rival write waits for the
    commit). One connection, one transaction, one commit.
    """

    __slots__ = ("_guards", "_writes", "db")

    def __init__(self, db: Connections) -> None:
        self.db = db
        self._writes: list[tuple[Executable, dict[str, Any]]] = []
        self._guards: list[tuple[Executable, dict[str, Any]]] = []

    def write(self, statement: Executable, values: dict[str, Any]) -> None:
        self._writes.append((statement, values))

    def guard(self, query: Executable, values: dict[str, Any]) -> None:
        self._guards.append((query, values))

    async def commit(self) -> bool:
        lone = len(self._writes) + len(self._guards) == 1  # atomic by itself
        try:
            async with self.db.single() if lone else self.db.begin() as conn:
                await self.run(conn)
        except GuardFailed:
            return False
        return True

    async def run(self, conn: Conn) -> None:
        """Within the caller's transaction; ``GuardFailed`` out of it must roll that back."""
        for statement, values in self._writes:
            await conn.execute(statement, values)
        for query, values in self._guards:
            if (await conn.execute(query, values)).first() is None:
                raise GuardFailed


class Repository:
    def __init__(self, engine: AsyncEngine) -> None:
        self.db = connections_for(engine)

    def transaction(self) -> SqlTransaction:
        return SqlTransaction(self.db)

    def joined(self, tx: Transaction) -> SqlTransaction:
        """``tx`` as this repository's kind, refused if it is another database's."""
        if not isinstance(tx, SqlTransaction) or tx.db is not self.db:
            raise TypeError("a transaction on another database")
        return tx

    async def insert_new(self, table: sa.Table, values: dict[str, Any]) -> bool:
        """Insert one row; False, with nothing changed, if its key or a unique value exists."""
        try:
            async with self.db.single() as conn:
                await conn.execute(sa.insert(table), values)
        except sa.exc.IntegrityError as exc:
            if is_duplicate(exc):
                return False
            raise
        return True


def select_by(table: sa.Table, *names: str) -> sa.Select[Any]:
    """``SELECT * FROM table WHERE name = :name AND ...``, built once at import.

    Hot queries are built once and given their values at execution: building a statement with
    the values in it costs SQLAlchemy a coercion and a cache key per value, on every call.
    """
    return sa.select(table).where(*(table.c[name] == sa.bindparam(name) for name in names))


def batch_delete(
    table: sa.Table, key: sa.ColumnElement[Any], condition: sa.ColumnElement[bool], limit: int
) -> sa.Delete:
    """``DELETE FROM table WHERE key IN (SELECT key ... WHERE condition LIMIT n)``.

    One bounded statement that means the same on SQLite and PostgreSQL (``DELETE ... LIMIT`` is
    neither portable nor available on PostgreSQL); the caller repeats it until fewer come back.
    """
    chosen = sa.select(key).where(condition).limit(limit)
    return sa.delete(table).where(key.in_(chosen))


def is_duplicate(exc: sa.exc.IntegrityError) -> bool:
    """A unique or primary-key violation, on SQLite or PostgreSQL."""
    text = str(exc.orig).lower()
    return "unique" in text or "duplicate" in text


def as_dict(row: sa.Row[Any]) -> dict[str, Any]:
    return dict(row._mapping)


def values_of(table: sa.Table, record: Any, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The record's attributes named like the table's columns, ready for an INSERT."""
    return {c.name: getattr(record, c.name) for c in table.columns if c.name not in skip}


def columns_of(table: sa.Table, data: dict[str, Any]) -> dict[str, Any]:
    """The part of a joined row that belongs to ``table``."""
    return {c.name: data[c.name] for c in table.columns}
