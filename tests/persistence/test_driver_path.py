"""The driver path behind ``Conn`` (persistence/connections.py): hot statements straight on
sqlite3 or asyncpg, everything else through SQLAlchemy, one transaction, the same results and
the same errors. On both databases unless a test says otherwise."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.dialects.sqlite import pysqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.persistence.conftest import NOW, Stores, h
from tokensmith.persistence.asyncpg_driver import AsyncpgConnections
from tokensmith.persistence.connections import Connections, connections_for
from tokensmith.persistence.database import is_unavailable
from tokensmith.persistence.repositories._base import is_duplicate, select_by
from tokensmith.persistence.results import Rows
from tokensmith.persistence.sqlite_driver import SqliteConnections
from tokensmith.persistence.statements import Plan, Plans
from tokensmith.persistence.tables import audit_events, clients, issued_tokens

pytestmark = pytest.mark.anyio

_BY_HASH = select_by(issued_tokens, "token_hash")
_INSERT = sa.insert(issued_tokens)
_REVOKE = (
    sa.update(issued_tokens)
    .where(issued_tokens.c.jti == sa.bindparam("match_jti"))
    .values(revoked_at=sa.bindparam("now"))
)
_CLIENT = select_by(clients, "client_id")
_PID = sa.text("SELECT pg_backend_pid()")
_KILL = sa.text("SELECT pg_terminate_backend(:pid)")
_INSERT_CLIENT = sa.insert(clients)


def token(jti: str) -> dict[str, object]:
    return {
        "jti": jti,
        "token_hash": h(jti),
        "client_id": "c1",
        "subject": "alice",
        "scope": "read",
        "audience": "api",
        "format": "opaque",
        "family_id": None,
        "code_hash": None,
        "issued_at": NOW,
        "expires_at": NOW + 60,
        "revoked_at": None,
        "claims": {"cnf": {"jkt": "x"}} if jti.endswith("b") else None,
    }


def client_row(client_id: str) -> dict[str, object]:
    # Every kind of type processing: JSON, Boolean, LargeBinary, NULLs.
    return {
        "client_id": client_id,
        "name": "svc",
        "is_public": False,
        "grant_types": ["client_credentials"],
        "redirect_uris": [],
        "scope": "read",
        "auth_method": "client_secret_basic",
        "access_token_format": "jwt",
        "access_token_ttl": None,
        "refresh_token_ttl": 3600,
        "cors_origins": [],
        "post_logout_redirect_uris": [],
        "allowed_resources": ["https://api.example"],
        "jwks": {"keys": [{"kty": "oct"}]},
        "refresh_grace": 0,
        "rate_limit": None,
        "may_vouch_client_ip": True,
        "dpop_bound_access_tokens": True,
        "require_pushed_authorization_requests": False,
        "token_exchange": {"audiences": ["https://api.example"]},
        "id_token_encrypted_response_alg": "RSA-OAEP-256",
        "id_token_encrypted_response_enc": "A256GCM",
        "userinfo_encrypted_response_alg": None,
        "userinfo_encrypted_response_enc": None,
        "secret_hash": h("secret"),
        "previous_secret_hash": None,
        "previous_secret_expires_at": None,
        "created_at": NOW,
        "updated_at": NOW,
    }


# -- statements.py: which statements get a plan ---------------------------------------------


def test_only_a_statement_seen_again_with_no_literal_values_gets_a_plan() -> None:
    plans = Plans(pysqlite.dialect())
    assert plans.get(_BY_HASH, {"token_hash": b"x"}) is None  # first sighting: maybe per call
    plan = plans.get(_BY_HASH, {"token_hash": b"x"})
    assert plan is not None and plan.is_select and plan.names == ("token_hash",)
    assert plans.get(_BY_HASH, {"token_hash": b"y"}) is plan  # compiled once

    def twice(statement: sa.Executable, parameters: dict[str, object]) -> object:
        plans.get(statement, parameters)
        return plans.get(statement, parameters)

    t = issued_tokens
    literal = sa.update(t).where(t.c.jti == "j").values(revoked_at=NOW)
    assert twice(literal, {}) is None  # values of its own
    expanding = sa.select(t).where(t.c.jti.in_(sa.bindparam("jtis", expanding=True)))
    assert twice(expanding, {"jtis": ["a"]}) is None
    returning = sa.update(t).values(revoked_at=sa.bindparam("now")).returning(t.c.jti)
    asked = twice(returning, {"now": NOW})  # a RETURNING of its own: read like a SELECT
    assert isinstance(asked, Plan) and asked.returns_rows and not asked.is_select
    on_postgresql = Plans(asyncpg.dialect())
    implicit = sa.insert(audit_events)  # SQLAlchemy would add RETURNING event_id itself
    on_postgresql.get(implicit, {"at": NOW, "event": "e"})
    assert on_postgresql.get(implicit, {"at": NOW, "event": "e"}) is None
    assert twice(sa.text("SELECT 1"), {}) is None
    ambiguous = (
        sa.select(t.c.jti, clients.c.client_id, t.c.client_id)
        .where(t.c.client_id == clients.c.client_id, t.c.jti == sa.bindparam("j"))
        .set_label_style(sa.LABEL_STYLE_NONE)  # two columns named client_id
    )
    assert twice(ambiguous, {"j": "a"}) is None
    assert twice(_BY_HASH, {}) is None  # a value missing: SQLAlchemy says which


def test_an_insert_is_planned_per_set_of_columns() -> None:
    plans = Plans(pysqlite.dialect())
    plans.get(_INSERT, token("a"))
    full = plans.get(_INSERT, token("a"))
    short = plans.get(_INSERT, {"jti": "b", "client_id": "c"})
    assert full is not None and short is not None
    assert len(full.names) == len(issued_tokens.c) and short.names == ("jti", "client_id")


def test_rows_answer_like_sqlalchemys_results() -> None:
    assert Rows([], 0).first() is None
    assert Rows([], 0).scalar() is None
    assert Rows([], 0).one_or_none() is None
    with pytest.raises(sa.exc.NoResultFound):
        Rows([], 0).one()
    with pytest.raises(sa.exc.NoResultFound):
        Rows([], 0).scalars().one()
    two = Rows([(1,), (2,)], 2)  # type: ignore[list-item]
    with pytest.raises(sa.exc.MultipleResultsFound):
        two.one()
    with pytest.raises(sa.exc.MultipleResultsFound):
        two.scalar_one_or_none()
    assert two.scalars().all() == [1, 2] and two.scalar() == 1 and len(two.all()) == 2


# -- on the databases -------------------------------------------------------------------------


async def test_the_driver_path_reads_what_sqlalchemy_reads(stores: Stores) -> None:
    assert stores.engine is not None
    db = connections_for(stores.engine)
    assert isinstance(db, SqliteConnections | AsyncpgConnections)
    for n in range(3):  # the first time through SQLAlchemy, then through the driver
        async with db.begin() as conn:
            await conn.execute(_INSERT_CLIENT, client_row(f"c{n}"))
            await conn.execute(_INSERT, token(f"t{n}"))
        async with db.connect() as conn:
            fast = (await conn.execute(_CLIENT, {"client_id": f"c{n}"})).one()
            token_row = (await conn.execute(_BY_HASH, {"token_hash": h(f"t{n}")})).one()
            missing = (await conn.execute(_BY_HASH, {"token_hash": h("none")})).first()
        async with stores.engine.connect() as sa_conn:
            expected = (await sa_conn.execute(_CLIENT, {"client_id": f"c{n}"})).one()
        assert dict(fast._mapping) == dict(expected._mapping) == client_row(f"c{n}")
        assert fast.is_public is False and fast.may_vouch_client_ip is True
        assert fast._mapping[clients.c.jwks] == {"keys": [{"kty": "oct"}]}
        assert token_row.jti == f"t{n}" and bytes(token_row.token_hash) == h(f"t{n}")
        assert missing is None
    async with db.begin() as conn:
        revoked = await conn.execute(_REVOKE, {"match_jti": "t1", "now": NOW})
        none = await conn.execute(_REVOKE, {"match_jti": "nobody", "now": NOW})
    assert (revoked.rowcount, none.rowcount) == (1, 0)


async def test_a_duplicate_is_sqlalchemys_integrity_error_and_rolls_back(stores: Stores) -> None:
    assert stores.engine is not None
    db = connections_for(stores.engine)
    for _ in range(2):  # warm: the inserts below take the driver path
        async with db.begin() as conn:
            await conn.execute(_INSERT, token("warm"))
            await conn.execute(sa.delete(issued_tokens))
    async with db.begin() as conn:
        await conn.execute(_INSERT, token("dup"))
    with pytest.raises(sa.exc.IntegrityError) as caught:
        await _insert(db, "kept-out", "dup")
    assert is_duplicate(caught.value) and not is_unavailable(caught.value)
    async with db.connect() as conn:
        assert (await conn.execute(_BY_HASH, {"token_hash": h("kept-out")})).first() is None


async def test_driver_and_sqlalchemy_statements_share_one_transaction(stores: Stores) -> None:
    assert stores.engine is not None
    db = connections_for(stores.engine)
    for jti in ("w1", "w2"):
        async with db.begin() as conn:
            await conn.execute(_INSERT, token(jti))
    with pytest.raises(RuntimeError):
        await _mixed_then_fail(db)
    async with db.begin() as conn:
        await conn.execute(sa.update(issued_tokens).values(scope="both"))
        await conn.execute(_REVOKE, {"match_jti": "w1", "now": 3})
    async with stores.engine.connect() as sa_conn:
        rows = (await sa_conn.execute(sa.select(issued_tokens).order_by("jti"))).all()
    assert [(r.jti, r.scope, r.revoked_at) for r in rows] == [
        ("w1", "both", 3),
        ("w2", "both", None),
    ]


async def test_a_rollback_undoes_the_driver_path_statements(stores: Stores) -> None:
    assert stores.engine is not None
    db = connections_for(stores.engine)
    for jti in ("a", "b", "c"):
        async with db.begin() as conn:
            await conn.execute(_INSERT, token(jti))
            if jti != "a":
                await conn.rollback()
    async with db.connect() as conn:
        found = [
            (await conn.execute(_BY_HASH, {"token_hash": h(jti)})).first() is not None
            for jti in ("a", "b", "c")
        ]
    assert found == [True, False, False]


async def test_listeners_on_sync_engine_see_every_statement(stores: Stores) -> None:
    assert stores.engine is not None
    db = connections_for(stores.engine)
    for _ in range(2):
        async with db.connect() as conn:
            await conn.execute(_BY_HASH, {"token_hash": b"warm"})
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    sa.event.listen(db.sync_engine, "before_cursor_execute", record)
    try:
        async with db.begin() as conn:
            await conn.execute(_INSERT, token("seen"))
            await conn.execute(_BY_HASH, {"token_hash": h("seen")})
    finally:
        sa.event.remove(db.sync_engine, "before_cursor_execute", record)
    assert [s.split()[0] for s in seen] == ["INSERT", "SELECT"]


@pytest.mark.backends("postgresql")
async def test_a_lost_postgresql_connection_is_replaced_or_reported(stores: Stores) -> None:
    """Without the pre-ping: a pooled connection the server dropped is replaced before use;
    one lost inside a transaction is the same 'unavailable' error SQLAlchemy gave."""
    assert stores.engine is not None
    db = connections_for(stores.engine)
    async with db.connect() as conn:
        first = await conn.scalar(_PID)
    async with stores.engine.connect() as admin:
        await admin.execute(_KILL, {"pid": first})
    for _ in range(2):
        async with db.connect() as conn:
            assert (await conn.execute(_BY_HASH, {"token_hash": b"x"})).first() is None
            assert await conn.scalar(_PID) != first
    with pytest.raises(sa.exc.DBAPIError) as caught:
        await _lose_midway(db, stores.engine)
    assert is_unavailable(caught.value)
    async with db.begin() as conn:  # and the pool is whole again
        await conn.execute(_INSERT, token("after"))


async def _insert(db: Connections, *jtis: str) -> None:
    async with db.begin() as conn:
        for jti in jtis:
            await conn.execute(_INSERT, token(jti))


async def _mixed_then_fail(db: Connections) -> None:
    async with db.begin() as conn:
        await conn.execute(_INSERT, token("a"))  # driver
        await conn.execute(  # SQLAlchemy: a value of its own
            sa.update(issued_tokens).where(issued_tokens.c.jti == "w1").values(revoked_at=1)
        )
        await conn.execute(_REVOKE, {"match_jti": "w2", "now": 2})  # driver again
        raise RuntimeError("undo it all")


async def _lose_midway(db: Connections, engine: AsyncEngine) -> None:
    async with db.begin() as conn:
        await conn.execute(_BY_HASH, {"token_hash": b"x"})
        async with engine.connect() as admin:
            await admin.execute(_KILL, {"pid": await conn.scalar(_PID)})
        await conn.execute(_INSERT, token("lost"))
