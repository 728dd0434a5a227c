"""What every repository shares: an engine, and row-to-record mapping."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.persistence.connections import connections_for

__all__ = [
    "PURGE_BATCH",
    "Repository",
    "as_dict",
    "batch_delete",
    "columns_of",
    "is_duplicate",
    "select_by",
    "values_of",
]

PURGE_BATCH = 1000  # rows per purge statement: short transactions, short locks


class Repository:
    def __init__(self, engine: AsyncEngine) -> None:
        self.db = connections_for(engine)

    async def insert_new(self, table: sa.Table, values: dict[str, Any]) -> bool:
        """Insert one row; False, with nothing changed, if its key or a unique value exists."""
        try:
            async with self.db.begin() as conn:
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
