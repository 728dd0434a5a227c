"""Engines for SQLite and PostgreSQL behind one URL, and the errors that mean "database down"."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

__all__ = [
    "DATABASE_ERRORS",
    "UNAVAILABLE_ERRORS",
    "create_engine",
    "describe_url",
    "normalise_url",
]

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


def create_engine(url: URL, *, schema: str | None = None, pool_size: int = 10) -> AsyncEngine:
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    kwargs: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": pool_size,
        "pool_pre_ping": True,  # a connection broken while the database was away is replaced
        "pool_recycle": 1800,
        "pool_timeout": 5,
    }
    if schema is not None:
        if not _SCHEMA_NAME.match(schema):
            raise ValueError("a schema name is lower-case letters, digits and _")
        if url.get_driver_name() == "asyncpg":
            kwargs["connect_args"] = {"server_settings": {"search_path": schema}, "timeout": 5}
        else:
            kwargs["connect_args"] = {"options": f"-csearch_path={schema}", "connect_timeout": 5}
    elif url.get_driver_name() == "asyncpg":
        kwargs["connect_args"] = {"timeout": 5}
    return create_async_engine(url, **kwargs)


def _sqlite_engine(url: URL) -> AsyncEngine:
    if url.database and url.database != ":memory:":
        Path(os.path.dirname(os.path.abspath(url.database))).mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 15})

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers run beside the single writer; IMMEDIATE-style waits use busy_timeout.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine
