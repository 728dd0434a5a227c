"""Seen client-assertion ids (implements ``AssertionReplayStore``): the primary key is the lock."""

from __future__ import annotations

import sqlalchemy as sa

from tokensmith.persistence.repositories._base import Repository, is_duplicate
from tokensmith.persistence.tables import client_assertions as t

__all__ = ["SqlAssertionStore"]


class SqlAssertionStore(Repository):
    async def remember(self, client_id: str, jti: str, expires_at: int) -> bool:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    sa.insert(t).values(client_id=client_id, jti=jti, expires_at=expires_at)
                )
        except sa.exc.IntegrityError as exc:
            if is_duplicate(exc):
                return False
            raise
        return True

    async def purge_expired(self, before: int) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(sa.delete(t).where(t.c.expires_at < before))
        return result.rowcount
