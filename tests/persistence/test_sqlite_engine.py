"""SQLite runs each call where it is awaited: no thread per connection, same behaviour otherwise.

The async engine does it through aiosqlite; repositories, through the blocking driver."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import POSTGRES_URL
from tokensmith.persistence.connections import close_connections, connections_for
from tokensmith.persistence.database import create_engine, normalise_url

pytestmark = pytest.mark.anyio

_items = sa.Table(
    "items",
    sa.MetaData(),
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("size", sa.Integer, nullable=False),
)


async def test_sqlite_calls_run_without_a_thread(tmp_path: Path) -> None:
    before = threading.active_count()
    engine = create_engine(normalise_url(f"sqlite:///{tmp_path / 'inline.db'}"))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_items.metadata.create_all)
            await conn.execute(
                sa.insert(_items), [{"name": "a", "size": 1}, {"name": "b", "size": 2}]
            )
            assert threading.active_count() == before
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(_items).order_by(_items.c.name))).all()
            mode = (await conn.execute(sa.text("PRAGMA journal_mode"))).scalar()
        assert [tuple(r) for r in rows] == [("a", 1), ("b", 2)]
        assert mode == "wal"
    finally:
        await engine.dispose()
    assert threading.active_count() == before


async def test_sqlite_errors_and_rollback_behave_as_before(tmp_path: Path) -> None:
    engine = create_engine(normalise_url(f"sqlite:///{tmp_path / 'inline.db'}"))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_items.metadata.create_all)
            await conn.execute(sa.insert(_items).values(name="a", size=1))
        with pytest.raises(sa.exc.IntegrityError):
            await _insert_twice(engine)
        async with engine.connect() as conn:
            names = (await conn.execute(sa.select(_items.c.name))).scalars().all()
        assert names == ["a"]  # the failed transaction left nothing behind
        with pytest.raises(sa.exc.OperationalError):
            await _select_missing(engine)
    finally:
        await engine.dispose()


async def _insert_twice(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.insert(_items).values(name="b", size=2))
        await conn.execute(sa.insert(_items).values(name="a", size=3))


async def _select_missing(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT * FROM missing"))


async def test_in_memory_sqlite_keeps_its_one_connection() -> None:
    engine = create_engine(normalise_url("sqlite://"))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_items.metadata.create_all)
            await conn.execute(sa.insert(_items).values(name="a", size=1))
        async with engine.connect() as conn:
            assert (
                await conn.execute(sa.select(sa.func.count()).select_from(_items))
            ).scalar() == 1
    finally:
        await engine.dispose()


# -- what repositories use: persistence/connections.py ------------------------------------------


_INSERT = sa.insert(_items)


async def test_repositories_reach_a_sqlite_file_through_the_blocking_driver(
    tmp_path: Path,
) -> None:
    engine = create_engine(normalise_url(f"sqlite:///{tmp_path / 'inline.db'}"))
    async with engine.begin() as conn:
        await conn.run_sync(_items.metadata.create_all)
    db = connections_for(engine)
    try:
        assert connections_for(engine) is db  # one pool per engine
        assert db.sync_engine is not engine.sync_engine
        assert db.sync_engine.dialect.driver == "pysqlite"
        async with db.begin() as conn:
            await conn.execute(sa.insert(_items), {"name": "a", "size": 1})
        with pytest.raises(sa.exc.IntegrityError):
            async with db.begin() as conn:  # a failure part-way: the first row is rolled back
                await conn.execute(_INSERT, [{"name": "b", "size": 2}, {"name": "a", "size": 3}])
        async with db.connect() as conn:
            names = (await conn.execute(sa.select(_items.c.name))).scalars().all()
            pragmas = [
                await conn.scalar(sa.text(f"PRAGMA {name}"))
                for name in (
                    "journal_mode",
                    "synchronous",
                    "busy_timeout",
                    "foreign_keys",
                    "mmap_size",
                    "cache_size",
                )
            ]
        assert names == ["a"]  # and the async engine sees the same file:
        async with engine.connect() as conn:
            assert (await conn.execute(sa.select(_items.c.name))).scalars().all() == ["a"]
        assert pragmas == ["wal", 1, 15000, 1, 268435456, -16384]  # synchronous 1 is NORMAL
    finally:
        close_connections(engine)
        await engine.dispose()
    assert connections_for(engine) is not db  # closed: a new pool if asked again
    close_connections(engine)


async def test_memory_keeps_the_async_engine_and_postgresql_gets_a_pool_beside_it(
    postgres: None,
) -> None:
    memory = create_engine(normalise_url("sqlite://"))
    try:
        assert connections_for(memory).sync_engine is memory.sync_engine
    finally:
        close_connections(memory)
        await memory.dispose()
    engine = create_engine(normalise_url(POSTGRES_URL))
    pids: set[int] = set()
    try:
        beside = connections_for(engine).sync_engine
        assert beside is not engine.sync_engine and beside.url == engine.sync_engine.url
        assert beside.dialect.driver == "asyncpg"
        assert engine.sync_engine.pool._pre_ping and not beside.pool._pre_ping  # type: ignore[attr-defined]
        for _ in range(2):  # the connection is kept for the next use
            async with connections_for(engine).connect() as conn:
                pids.add(await conn.scalar(sa.text("SELECT pg_backend_pid()")))
        assert len(pids) == 1
    finally:
        close_connections(engine)
        await engine.dispose()
    # Closed with the engine it stands beside.
    assert await _backends(pids) == 0


async def _backends(pids: set[int]) -> int:
    engine = create_engine(normalise_url(POSTGRES_URL))
    try:
        async with engine.connect() as conn:
            for _ in range(50):
                count = await conn.scalar(
                    sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                    {"pids": list(pids)},
                )
                if count == 0:
                    break
                await asyncio.sleep(0.02)
        return int(count)
    finally:
        await engine.dispose()
