"""``Connections.single()`` (persistence/single_statement.py): a block of one statement, sent
without BEGIN and COMMIT on PostgreSQL, committed as ``begin()`` commits, and a second statement
refused on every database. On both databases unless a test says otherwise."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from tests.persistence.conftest import NOW, Stores, h
from tests.persistence.test_driver_path import token
from tokensmith.oauth.tokens import IssuedToken
from tokensmith.persistence.connections import Connections, connections_for
from tokensmith.persistence.database import is_unavailable
from tokensmith.persistence.repositories._base import select_by
from tokensmith.persistence.single_statement import ANY, ONE, SecondStatement, counted
from tokensmith.persistence.tables import issued_tokens

pytestmark = pytest.mark.anyio

_INSERT = sa.insert(issued_tokens)
_BY_HASH = select_by(issued_tokens, "token_hash")
_BY_JTI = select_by(issued_tokens, "jti")
_REVOKE_RETURNING = (
    sa.update(issued_tokens)
    .where(issued_tokens.c.jti == sa.bindparam("match_jti"), issued_tokens.c.revoked_at.is_(None))
    .values(revoked_at=sa.bindparam("now"))
    .returning(issued_tokens.c.jti, issued_tokens.c.token_hash)
)

_COLUMNS = ("jti", "client_id", "subject", "scope", "audience", "format", "issued_at", "expires_at")


def _row(jti: str) -> tuple[Any, ...]:
    """A row for ``insert_many`` (ready driver values, in ``_COLUMNS`` order)."""
    return (jti, "c1", "alice", "read", "api", "opaque", NOW, NOW + 60)


def test_a_budget_of_one_allows_one_statement() -> None:
    assert counted(ANY) == ANY and counted(counted(ANY)) == ANY
    assert counted(ONE) == 0
    with pytest.raises(SecondStatement):
        counted(0)


def _db(stores: Stores) -> Connections:
    assert stores.engine is not None
    return connections_for(stores.engine)


async def _found(db: Connections, jti: str) -> bool:
    async with db.connect() as conn:
        return (await conn.execute(_BY_JTI, {"jti": jti})).first() is not None


async def test_a_single_write_is_stored_by_either_path(stores: Stores) -> None:
    db = _db(stores)
    for n in range(3):  # the first time through SQLAlchemy, then through the driver
        async with db.single() as conn:
            await conn.execute(_INSERT, token(f"s{n}"))
        assert await _found(db, f"s{n}")
    async with db.single() as conn:  # a statement of this call only: SQLAlchemy, committed too
        await conn.execute(sa.delete(issued_tokens).where(issued_tokens.c.jti == "s0"))
    assert not await _found(db, "s0")


async def test_a_single_update_returning_answers_once(stores: Stores) -> None:
    db = _db(stores)
    async with db.single() as conn:
        await conn.execute(_INSERT, token("r"))
    answers = []
    for now in (NOW, NOW + 1, NOW + 2):  # the second and third through the driver, if planned
        async with db.single() as conn:
            result = await conn.execute(_REVOKE_RETURNING, {"match_jti": "r", "now": now})
            answers.append([(row.jti, bytes(row.token_hash)) for row in result])
    assert answers == [[("r", h("r"))], [], []]
    assert stores.engine is not None
    async with stores.engine.connect() as sa_conn:
        revoked = await sa_conn.scalar(sa.select(issued_tokens.c.revoked_at))
    assert revoked == NOW


async def test_a_second_statement_is_refused_before_it_is_sent(stores: Stores) -> None:
    db = _db(stores)
    for second in ("execute", "scalar", "insert_many", "rollback"):
        with pytest.raises(SecondStatement):
            await _two_statements(db, second)
        assert not await _found(db, "second")
    async with db.single() as conn:  # and the connections are whole again
        await conn.execute(_INSERT, token("after"))
    assert await _found(db, "after")


async def _two_statements(db: Connections, second: str) -> None:
    async with db.single() as conn:
        await conn.execute(_INSERT, token(f"first-{second}"))
        if second == "execute":
            await conn.execute(_INSERT, token("second"))
        elif second == "scalar":
            await conn.scalar(_BY_HASH, {"token_hash": h("second")})
        elif second == "insert_many":
            await conn.insert_many(issued_tokens, _COLUMNS, [_row("second")])
        else:
            await conn.rollback()  # could not undo the first: refused as well


async def test_a_failing_single_write_stores_nothing(stores: Stores) -> None:
    db = _db(stores)
    for n in range(2):  # through SQLAlchemy, then the driver
        async with db.single() as conn:
            await conn.execute(_INSERT, token(f"dup{n}"))
        duplicate = {**token(f"other{n}"), "jti": f"dup{n}"}
        with pytest.raises(sa.exc.IntegrityError):
            async with db.single() as conn:
                await conn.execute(_INSERT, duplicate)
        assert not await _found(db, f"other{n}")
    rows = [_row(f"b{n}") for n in range(3)]
    rows.append(rows[0])  # the batch's last row a duplicate of its first: none of it is stored
    with pytest.raises(sa.exc.IntegrityError):
        async with db.single() as conn:
            await conn.insert_many(issued_tokens, _COLUMNS, rows)
    assert stores.engine is not None
    async with stores.engine.connect() as sa_conn:
        batch = await sa_conn.scalar(
            sa.select(sa.func.count()).where(issued_tokens.c.jti.like("b%"))
        )
    assert batch == 0


def _record_driver_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The first word of each statement sent to asyncpg from now on: one round trip each."""
    sent: list[str] = []
    for name in ("execute", "fetch", "executemany"):
        original = getattr(asyncpg.Connection, name)

        async def recorded(self: Any, query: str, *args: Any, _o: Any = original, **kw: Any) -> Any:
            sent.append(query.split()[0].rstrip(";").upper())
            return await _o(self, query, *args, **kw)

        monkeypatch.setattr(asyncpg.Connection, name, recorded)
    return sent


@pytest.mark.backends("postgresql")
async def test_a_single_write_is_one_round_trip_on_postgresql(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BEGIN and COMMIT are each a round trip of their own; a lone statement needs neither."""
    db = _db(stores)
    for n in range(2):  # warm: the statements below take the driver path
        async with db.begin() as conn:
            await conn.execute(_INSERT, token(f"warm{n}"))
        async with db.single() as conn:
            await conn.execute(_REVOKE_RETURNING, {"match_jti": f"warm{n}", "now": NOW})
    sent = _record_driver_calls(monkeypatch)
    async with db.single() as conn:
        await conn.execute(_INSERT, token("alone"))
    async with db.single() as conn:
        await conn.execute(_REVOKE_RETURNING, {"match_jti": "alone", "now": NOW})
    async with db.single() as conn:
        await conn.insert_many(issued_tokens, _COLUMNS, [_row("m1"), _row("m2")])
    assert sent == ["INSERT", "UPDATE", "INSERT"]
    sent.clear()
    async with db.begin() as conn:
        await conn.execute(_INSERT, token("in-a-block"))
    assert sent == ["BEGIN", "INSERT", "COMMIT"]


@pytest.mark.backends("postgresql")
async def test_a_grant_of_one_write_is_sent_alone_and_of_more_in_one_transaction(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    def record(jti: str) -> IssuedToken:
        return IssuedToken(jti, "c1", "u1", "openid", "https://api", "opaque", NOW, NOW + 60)

    for n in range(2):  # warm: the inserts below take the driver path
        tx = stores.tokens.transaction()
        await stores.tokens.add(record(f"warm{n}"), tx)
        await stores.tokens.add(record(f"warm{n}-2"), tx)
        assert await tx.commit()
    sent = _record_driver_calls(monkeypatch)
    tx = stores.tokens.transaction()
    await stores.tokens.add(record("one"), tx)
    assert await tx.commit()
    assert sent == ["INSERT"]
    sent.clear()
    tx = stores.tokens.transaction()
    await stores.tokens.add(record("two-a"), tx)
    await stores.tokens.add(record("two-b"), tx)
    assert await tx.commit()
    assert sent == ["BEGIN", "INSERT", "INSERT", "COMMIT"]
    assert await stores.tokens.get_by_jti("one") and await stores.tokens.get_by_jti("two-b")


@pytest.mark.backends("postgresql")
@pytest.mark.parametrize("warm", [False, True], ids=["via-sqlalchemy", "via-driver"])
async def test_a_single_write_on_a_connection_the_server_dropped_goes_on_another(
    stores: Stores, warm: bool
) -> None:
    """A kept connection whose backend was terminated (a restart, a failover, an idle timeout)
    may not know it yet: asyncpg refuses the write before sending anything ("cannot switch to
    state"), so it is safe to send it on another connection, as begin() does with its BEGIN.
    Before, that refusal was answered "unavailable" (503) for nearly every such write, where a
    begin() went on another connection unnoticed. A write that did go out before the socket
    closed may have been committed: it is not sent again, the caller hears "unavailable", and it
    is never stored twice."""
    db = _db(stores)
    admin_engine = stores.engine
    assert admin_engine is not None
    for attempt in range(10):  # the server's goodbye and the next write race: try it often
        if warm:
            for n in range(2):
                async with db.single() as conn:
                    await conn.execute(_INSERT, token(f"warm-{attempt}-{n}"))
        async with db.connect() as conn:
            pid = await conn.scalar(sa.text("SELECT pg_backend_pid()"))
        async with admin_engine.connect() as admin:
            await admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        jti = f"after-kill-{attempt}"
        failed: BaseException | None = None
        try:
            async with db.single() as conn:
                await conn.execute(_INSERT if warm else sa.insert(issued_tokens), token(jti))
        except sa.exc.SQLAlchemyError as exc:
            failed = exc
        async with db.connect() as conn:
            found = (await conn.execute(_BY_JTI, {"jti": jti})).all()
        if failed is None:
            assert len(found) == 1
        else:  # it went out (maybe committed): unavailable, and not sent again
            assert is_unavailable(failed), failed
            assert "cannot switch to state" not in str(failed), "never sent: send it elsewhere"
            assert len(found) <= 1
