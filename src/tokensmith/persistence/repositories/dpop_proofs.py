"""DPoP proofs seen (implements ``ProofReplayStore``): the primary key is the lock, so of two
nodes that see one proof at once exactly one insert succeeds (RFC 9449 §11.1)."""

from __future__ import annotations

import sqlalchemy as sa

from tokensmith.persistence.repositories._base import PURGE_BATCH, Repository
from tokensmith.persistence.tables import dpop_proofs as t

__all__ = ["SqlDpopProofStore"]


class SqlDpopProofStore(Repository):
    async def remember(self, proof_hash: bytes, expires_at: int) -> bool:
        return await self.insert_new(t, {"proof_hash": proof_hash, "expires_at": expires_at})

    async def purge_expired(self, before: int, limit: int = PURGE_BATCH) -> int:
        chosen = sa.select(t.c.proof_hash).where(t.c.expires_at < before).limit(limit)
        async with self.db.begin() as conn:
            result = await conn.execute(sa.delete(t).where(t.c.proof_hash.in_(chosen)))
        return result.rowcount
