"""Authorization codes and consents (implements ``CodeStore`` and ``ConsentStore``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tokensmith.oauth.grants import AuthorizationCode, Consent
from tokensmith.oauth.transactions import Transaction
from tokensmith.persistence.repositories._base import (
    PURGE_BATCH,
    Repository,
    as_dict,
    batch_delete,
    select_by,
    values_of,
)
from tokensmith.persistence.tables import authorization_codes as codes
from tokensmith.persistence.tables import consents, users

__all__ = ["SqlCodeStore", "SqlConsentStore"]


_INSERT_CODE = sa.insert(codes)
_CODE_BY_HASH = select_by(codes, "code_hash")
_CONSUME_CODE = (
    sa.update(codes)
    .where(
        codes.c.code_hash == sa.bindparam("match_hash"),
        codes.c.client_id == sa.bindparam("match_client"),
        codes.c.consumed_at.is_(None),
    )
    .values(consumed_at=sa.bindparam("now"))
    .returning(*codes.c)  # the spent code in the same statement: no second read
)
# Checked last in the grant's transaction: FOR SHARE holds the row on PostgreSQL, so a replay's
# mark waits for the commit; on SQLite the transaction's writes already hold the database.
_ISSUABLE = (
    sa.select(codes.c.code_hash)
    .where(
        codes.c.code_hash == sa.bindparam("code_hash"),
        codes.c.replayed_at.is_(None),
        sa.exists().where(users.c.user_id == codes.c.user_id, sa.not_(users.c.disabled)),
    )
    .with_for_update(read=True, of=codes)
)


def _code(row: sa.Row[Any]) -> AuthorizationCode:
    data = as_dict(row)
    data["code_hash"] = bytes(data["code_hash"])
    return AuthorizationCode(**data)


class SqlCodeStore(Repository):
    async def add(self, code: AuthorizationCode) -> None:
        async with self.db.single() as conn:
            await conn.execute(_INSERT_CODE, values_of(codes, code))

    async def consume(self, code_hash: bytes, client_id: str, now: int) -> AuthorizationCode | None:
        # The conditional update is the lock: of N concurrent exchanges, one gets the row back.
        async with self.db.single() as conn:
            result = await conn.execute(
                _CONSUME_CODE, {"match_hash": code_hash, "match_client": client_id, "now": now}
            )
            row = result.first()
        return _code(row) if row else None

    async def guard_issue(self, code_hash: bytes, tx: Transaction) -> None:
        self.joined(tx).guard(_ISSUABLE, {"code_hash": code_hash})

    async def get(self, code_hash: bytes) -> AuthorizationCode | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(_CODE_BY_HASH, {"code_hash": code_hash})).first()
        return _code(row) if row else None

    async def mark_replayed(self, code_hash: bytes, now: int) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                sa.update(codes)
                .where(codes.c.code_hash == code_hash, codes.c.replayed_at.is_(None))
                .values(replayed_at=now)
            )

    async def delete_for_client(self, client_id: str) -> int:
        async with self.db.begin() as conn:
            result = await conn.execute(sa.delete(codes).where(codes.c.client_id == client_id))
        return result.rowcount

    async def purge_expired(self, before: int, limit: int = PURGE_BATCH) -> int:
        statement = batch_delete(codes, codes.c.code_hash, codes.c.expires_at < before, limit)
        async with self.db.begin() as conn:
            result = await conn.execute(statement)
        return result.rowcount


class SqlConsentStore(Repository):
    async def get(self, user_id: str, client_id: str) -> Consent | None:
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(consents).where(
                        consents.c.user_id == user_id, consents.c.client_id == client_id
                    )
                )
            ).first()
        return Consent(**as_dict(row)) if row else None

    async def put(self, consent: Consent) -> None:
        values = values_of(consents, consent)
        async with self.db.begin() as conn:
            updated = await conn.execute(
                sa.update(consents)
                .where(
                    consents.c.user_id == consent.user_id,
                    consents.c.client_id == consent.client_id,
                )
                .values(scope=consent.scope, updated_at=consent.updated_at)
            )
            if updated.rowcount == 0:
                await conn.execute(sa.insert(consents).values(**values))

    async def revoke(self, user_id: str, client_id: str) -> bool:
        async with self.db.begin() as conn:
            result = await conn.execute(
                sa.delete(consents).where(
                    consents.c.user_id == user_id, consents.c.client_id == client_id
                )
            )
        return result.rowcount == 1
