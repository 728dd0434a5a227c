"""Seen client-assertion ids (implements ``AssertionReplayStore``): the primary key is the lock."""

from __future__ import annotations

import sqlalchemy as sa

from tokensmith.persistence.repositories._base import Repository
from tokensmith.persistence.tables import client_assertions as t

__all__ = ["SqlAssertionStore"]


class SqlAssertionStore(Repository):
    async def remember(self, client_id: str, jti: str, expires_at: int) -> bool:
        return await self.insert_new(
            t, {"client_id": client_id, "jti": jti, "expires_at": expires_at}
        )

    async def purge_expired(self, before: int) -> int:
        async with self.db.begin() as conn:
            result = await conn.execute(sa.delete(t).where(t.c.expires_at < before))
        return result.rowcount
