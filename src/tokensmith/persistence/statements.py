"""Hot statements compiled once per dialect into what the driver takes (for connections.py).

SQLAlchemy spends about 50 µs of CPU around each statement's driver call (a cache key, an
execution context, result metadata), several times the driver's own work on SQLite. The hot
statements are built once at import (``select_by``, module-level ``insert``/``update`` with
bind parameters), so they compile to the same SQL every time: here each is compiled once per
set of parameter names, and a ``Plan`` says how to call the driver and read what comes back,
with the very bind and result processors SQLAlchemy would apply.

A statement gets a plan only if it is certain to mean the same run either way; anything else
(``None``) goes through SQLAlchemy:

- the same object seen before: a statement built per call is never compiled here;
- a SELECT, INSERT, UPDATE or DELETE whose every bound value comes from the parameters (no
  literal values, no expanding ``IN``, no bind-name escaping);
- nothing for SQLAlchemy to fetch or generate afterwards (defaults, prefetch, the RETURNING
  it would add itself for a new row's key); a RETURNING the statement asks for is read like a
  SELECT's columns (SQLite has it from 3.35 on, as SQLAlchemy's dialect checks);
- on a driver that reports column types (asyncpg), result types whose processing does not
  depend on them.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.engine.result import SimpleResultMetaData
from sqlalchemy.engine.row import Row
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["Plan", "Plans", "insert_sql", "listened"]

_Processor = Callable[[Any], Any]
_Processors = list[Callable[[Any], Any] | None]

# Statement kinds a plan may stand for; DDL, text() and the rest stay with SQLAlchemy.
_PLANNED = (sa.Select, sa.Insert, sa.Update, sa.Delete)
# Result types whose asyncpg processing is none whatever the column's type code: the codecs
# SQLAlchemy installs on each connection (JSON) do the decoding, as they do for our plans.
_PLAIN_RESULT_TYPES = (
    sa.String,
    sa.Integer,
    sa.Boolean,
    sa.LargeBinary,
    sa.JSON,
)


@dataclass(frozen=True, slots=True)
class Plan:
    """One statement as the driver takes it: ``sql`` with positional parameters ``names``."""

    sql: str
    names: tuple[str, ...]
    binds: tuple[_Processor | None, ...] | None  # per name; None when no value needs one
    returns_rows: bool
    is_select: bool
    metadata: SimpleResultMetaData | None
    processors: Any  # per column (a list); None when no column needs one

    def arguments(self, parameters: Mapping[str, Any]) -> tuple[Any, ...]:
        if self.binds is None:
            return tuple([parameters[name] for name in self.names])
        return tuple(
            [
                value if process is None else process(value)
                for value, process in zip(
                    [parameters[name] for name in self.names], self.binds, strict=True
                )
            ]
        )

    def rows(self, fetched: Sequence[Any]) -> list[Row[Any]]:
        """Rows like SQLAlchemy's: attribute access, ``_mapping``, tuple behaviour."""
        metadata = self.metadata
        assert metadata is not None
        index = metadata._key_to_index
        processors = self.processors
        return [Row(metadata, processors, index, data) for data in fetched]


_NO_PARAMETERS: Mapping[str, Any] = {}


def listened(conn: Connection) -> bool:
    """A listener on the engine or the connection (tests counting statements), or echo: then
    every statement goes through SQLAlchemy, so that it sees each one."""
    return bool(conn._has_events or conn.engine._has_events or conn._echo)


class Plans:
    """The plans of one dialect, keyed on the statement object and its parameters' names."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self._dialect = dialect
        # Entries go with their statement: a per-call statement leaves nothing behind.
        self._seen: weakref.WeakKeyDictionary[Executable, dict[tuple[str, ...], Plan | None]] = (
            weakref.WeakKeyDictionary()
        )

    def for_call(
        self, statement: Executable, parameters: Any
    ) -> tuple[Plan, Mapping[str, Any]] | None:
        """The plan of one execution, with its parameters as a mapping; None if SQLAlchemy runs
        it (no plan, or parameters that are not one dict: a list of rows, a tuple)."""
        if parameters is None:
            values: Mapping[str, Any] = _NO_PARAMETERS
        elif type(parameters) is dict:
            values = parameters
        else:
            return None
        plan = self.get(statement, values)
        return None if plan is None else (plan, values)

    def get(self, statement: Executable, parameters: Mapping[str, Any]) -> Plan | None:
        if not isinstance(statement, _PLANNED):
            return None
        plans = self._seen.get(statement)
        if plans is None:
            # Seen once: maybe built for this call only. A second sighting compiles it.
            self._seen[statement] = {}
            return None
        names = tuple(parameters)
        try:
            return plans[names]
        except KeyError:
            plan = plans[names] = _compile(statement, names, self._dialect)
            return plan


def _compile(statement: Executable, names: tuple[str, ...], dialect: sa.Dialect) -> Plan | None:
    if not isinstance(statement, _PLANNED) or not dialect.positional:
        return None
    # As SQLAlchemy compiles it to execute it: the parameters' names decide an INSERT's columns.
    compiled = statement.compile(dialect=dialect, column_keys=sorted(names))
    assert isinstance(compiled, SQLCompiler)
    order = tuple(compiled.positiontup or ())
    if (
        compiled.literal_execute_params
        or compiled.post_compile_params
        or compiled.escaped_bind_names
        or compiled.implicit_returning
        or (getattr(compiled, "effective_returning", None) and not _asked_to_return(statement))
        or getattr(compiled, "postfetch", None)
        or compiled.insert_prefetch
        or compiled.update_prefetch
        or not set(order) <= set(names)
    ):
        return None
    for bind in compiled.binds.values():
        # A literal value or a callable would be the statement's own, not the parameters'.
        if not bind.required or bind.callable is not None:
            return None
    binds: list[_Processor | None] = []
    for name in order:
        process = compiled._bind_processors.get(name)
        if process is not None and not callable(process):  # a tuple type's, per element
            return None
        binds.append(process)
    columns = compiled._result_columns
    returns_rows = bool(columns)
    metadata = None
    results: list[_Processor | None] | None = None
    if returns_rows:
        if dialect.name != "sqlite" and not all(
            isinstance(column.type, _PLAIN_RESULT_TYPES) and not isinstance(column.type, sa.Numeric)
            for column in columns
        ):
            return None
        # pysqlite reports no column types, so SQLAlchemy asks with None too.
        results = [column.type._cached_result_processor(dialect, None) for column in columns]
        if dialect.name != "sqlite" and any(results):
            return None
        keys = [column.keyname for column in columns]
        if len(set(keys)) != len(keys):  # SQLAlchemy's rows refuse ambiguous names: let them
            return None
        metadata = SimpleResultMetaData(
            keys,
            extra=[tuple(column.objects) for column in columns],
        )
    return Plan(
        sql=compiled.string,
        names=order,
        binds=tuple(binds) if any(binds) else None,
        returns_rows=returns_rows,
        is_select=isinstance(statement, sa.Select),
        metadata=metadata,
        processors=results if results and any(results) else None,
    )


def _asked_to_return(statement: Executable) -> bool:
    """An INSERT, UPDATE or DELETE with its own ``returning(...)``: its rows are the result."""
    return isinstance(statement, sa.Insert | sa.Update | sa.Delete) and bool(statement._returning)


@functools.lru_cache(maxsize=32)
def insert_sql(table: sa.Table, columns: tuple[str, ...], dialect: sa.Dialect) -> str:
    """A plain INSERT as the driver takes it, its parameters in ``columns`` order (positional
    styles: qmark for sqlite3, $n for asyncpg) or named like the columns (psycopg)."""
    compiled = sa.insert(table).inline().compile(dialect=dialect, column_keys=list(columns))
    if compiled.positional and tuple(compiled.positiontup or ()) != columns:
        raise ValueError(f"{dialect.name}: unexpected parameter order")
    return str(compiled)
