"""Seen client-assertion ids (implements ``AssertionReplayStore``): the primary key is the lock."""

from __future__ import annotations

import sqlalchemy as sa

from tokensmith.persistence.repositories._base import PURGE_BATCH, Repository
from tokensmith.persistence.tables import client_assertions as t

__all__ = ["SqlAssertionStore"]


class SqlAssertionStore(Repository):
    async def remember(self, client_id: str, jti: str, expires_at: int) -> bool:
        return await self.insert_new(
            t, {"client_id": client_id, "jti": jti, "expires_at": expires_at}
        )

    async def purge_expired(self, before: int, limit: int = PURGE_BATCH) -> int:
        # The key is two columns: the batch is chosen by expiry, then matched on both.
        chosen = sa.select(t.c.client_id, t.c.jti).where(t.c.expires_at < before).limit(limit)
        async with self.db.begin() as conn:
            result = await conn.execute(
                sa.delete(t).where(sa.tuple_(t.c.client_id, t.c.jti).in_(chosen))
            )
        return result.rowcount
