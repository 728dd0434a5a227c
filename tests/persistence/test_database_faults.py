"""PostgreSQL behind a fault proxy: every wait bounded, and a connection whose call timed out
dropped at once, never closed gracefully, kept or handed out again (pg_timeouts.py)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.faults import FaultProxy
from tests.support import POSTGRES_URL, postgres_schema
from tokensmith.persistence import migrate
from tokensmith.persistence.connections import close_connections, connections_for
from tokensmith.persistence.database import (
    DATABASE_ERRORS,
    create_engine,
    is_unavailable,
    normalise_url,
    unbounded_engine,
)
from tokensmith.persistence.repositories._base import select_by
from tokensmith.persistence.tables import issued_tokens

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("postgres")]

TIMEOUT = 0.5
# What a refused call may take beyond its one timeout: dropping the connection costs no wait,
# a retry on another connection (which a timed-out call must not get) would cost a second one.
MARGIN = 0.35

_BY_HASH = select_by(issued_tokens, "token_hash")
_REVOKE = (
    sa.update(issued_tokens)
    .where(issued_tokens.c.jti == sa.bindparam("match_jti"))
    .values(revoked_at=sa.bindparam("now"))
)


@pytest.fixture
def schema() -> Iterator[str]:
    with postgres_schema() as name:  # outside the event loop: it runs a loop of its own
        yield name


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    with FaultProxy(5432) as relay:
        yield relay


@pytest.fixture
async def engine(proxy: FaultProxy, schema: str) -> AsyncIterator[AsyncEngine]:
    url = normalise_url(POSTGRES_URL.replace("127.0.0.1:5432", proxy.url_port))
    made = create_engine(url, schema=schema, pool_size=2, timeout=TIMEOUT)
    try:
        yield made
    finally:
        proxy.heal()
        close_connections(made)
        await made.dispose()


async def select_one(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))


async def timed_refusal(call: Awaitable[None]) -> tuple[BaseException, float]:
    started = time.monotonic()
    try:
        await call
    except DATABASE_ERRORS as exc:
        return exc, time.monotonic() - started
    raise AssertionError("the call succeeded through a partition")


async def test_a_call_that_times_out_drops_its_connection_at_once(
    engine: AsyncEngine, proxy: FaultProxy
) -> None:
    await select_one(engine)  # a pooled connection, open
    proxy.partition()
    for _ in range(2):  # the pooled connection (its pre-ping), then a new one (its connect)
        error, seconds = await timed_refusal(select_one(engine))
        assert is_unavailable(error)
        assert seconds < TIMEOUT + MARGIN, f"refused after {seconds:.2f} s"
    proxy.heal()
    started = time.monotonic()
    await select_one(engine)
    assert time.monotonic() - started < TIMEOUT, "the pool handed out a timed-out connection"


async def test_the_driver_path_neither_retries_nor_keeps_a_timed_out_connection(
    engine: AsyncEngine, proxy: FaultProxy
) -> None:
    await migrate.upgrade(engine)
    db = connections_for(engine)
    for _ in range(2):  # planned: sent straight to asyncpg
        async with db.connect() as conn:
            await conn.execute(_BY_HASH, {"token_hash": b"x"})
    proxy.partition()

    async def read() -> None:
        async with db.connect() as conn:
            await conn.execute(_BY_HASH, {"token_hash": b"x"})

    async def write() -> None:
        async with db.single() as conn:
            await conn.execute(_REVOKE, {"match_jti": "none", "now": 1})

    async def in_transaction() -> None:
        async with db.begin() as conn:
            await conn.execute(_BY_HASH, {"token_hash": b"x"})

    for call in (read(), write(), in_transaction()):
        error, seconds = await timed_refusal(call)
        assert is_unavailable(error), repr(error)
        assert seconds < TIMEOUT + MARGIN, f"refused after {seconds:.2f} s"
    proxy.heal()
    for _ in range(4):  # more than the connections kept: none left over from the partition
        started = time.monotonic()
        await read()
        assert time.monotonic() - started < TIMEOUT, "a timed-out connection served again"


async def test_the_bounds_are_set_at_connect_and_migrations_go_without(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SHOW statement_timeout")) == "500ms"
        assert await conn.scalar(sa.text("SHOW idle_in_transaction_session_timeout")) == "1min"
    error, seconds = await timed_refusal(_sleep(engine, TIMEOUT + 0.3))
    assert is_unavailable(error)
    assert seconds < TIMEOUT + MARGIN

    unbounded = unbounded_engine(engine)
    assert unbounded is not None
    try:
        async with unbounded.connect() as conn:
            assert await conn.scalar(sa.text("SHOW statement_timeout")) == "0"
        await _sleep(unbounded, TIMEOUT + 0.3)  # an index on a large table may take as long
    finally:
        await unbounded.dispose()


async def test_a_statement_the_server_ends_is_unavailable(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.text("SET statement_timeout = 50"))
        with pytest.raises(sa.exc.DBAPIError) as caught:
            await conn.execute(sa.text("SELECT pg_sleep(0.3)"))
    assert is_unavailable(caught.value)


async def _sleep(engine: AsyncEngine, seconds: float) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT pg_sleep(:s)"), {"s": seconds})
