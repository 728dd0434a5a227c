"""API keys (implements ``tokensmith.apikeys.records.ApiKeyStore``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tokensmith.apikeys.records import ApiKeyRecord
from tokensmith.persistence.repositories._base import Repository, as_dict, select_by, values_of
from tokensmith.persistence.tables import api_keys as t

__all__ = ["SqlApiKeyStore"]


_KEY_BY_ID = select_by(t, "key_id")


def _record(row: sa.Row[Any]) -> ApiKeyRecord:
    data = as_dict(row)
    data["secret_hash"] = bytes(data["secret_hash"])
    data["allowed_cidrs"] = tuple(data["allowed_cidrs"])
    data["audiences"] = tuple(data["audiences"] or ())  # NULL: a key from before migration 0010
    return ApiKeyRecord(**data)


class SqlApiKeyStore(Repository):
    async def add(self, record: ApiKeyRecord) -> bool:
        values = values_of(t, record)
        values["allowed_cidrs"] = list(record.allowed_cidrs)
        values["audiences"] = list(record.audiences)
        return await self.insert_new(t, values)

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(_KEY_BY_ID, {"key_id": key_id})).first()
        return _record(row) if row else None

    async def list(self, owner: str | None = None) -> list[ApiKeyRecord]:
        query = sa.select(t).order_by(t.c.created_at, t.c.key_id)
        if owner is not None:
            query = query.where(t.c.owner == owner)
        async with self.db.connect() as conn:
            return [_record(row) for row in await conn.execute(query)]

    async def revoke(self, key_id: str, at: int) -> bool:
        async with self.db.begin() as conn:
            result = await conn.execute(
                sa.update(t)
                .where(t.c.key_id == key_id, t.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
        return result.rowcount == 1

    async def set_expiry(self, key_id: str, expires_at: int, replaced_by: str | None) -> bool:
        async with self.db.begin() as conn:
            result = await conn.execute(
                sa.update(t)
                .where(t.c.key_id == key_id)
                .values(
                    expires_at=sa.case(
                        (t.c.expires_at.is_(None), expires_at),
                        (t.c.expires_at > expires_at, expires_at),
                        else_=t.c.expires_at,
                    ),
                    replaced_by=replaced_by,
                )
            )
        return result.rowcount == 1

    async def touch(self, last_used: dict[str, int]) -> None:
        if not last_used:
            return
        async with self.db.begin() as conn:
            await conn.execute(
                sa.update(t)
                .where(t.c.key_id == sa.bindparam("k"))
                .values(last_used_at=sa.bindparam("at")),
                [{"k": key_id, "at": at} for key_id, at in last_used.items()],
            )
