"""DPoP proofs seen, in memory (implements ``ProofReplayStore``)."""

from __future__ import annotations

from tokensmith.persistence.memory._tables import PURGE_BATCH, Tables, round_trip

__all__ = ["MemoryDpopProofStore"]


class MemoryDpopProofStore:
    def __init__(self, tables: Tables | None = None) -> None:
        self._rows = (tables or Tables()).dpop_proofs

    async def remember(self, proof_hash: bytes, expires_at: int) -> bool:
        """Record a proof; False if it was seen before."""
        await round_trip()
        if proof_hash in self._rows:
            return False
        self._rows[proof_hash] = expires_at
        return True

    async def purge_expired(self, before: int, limit: int = PURGE_BATCH) -> int:
        await round_trip()
        expired = [key for key, expires_at in self._rows.items() if expires_at < before][:limit]
        for key in expired:
            del self._rows[key]
        return len(expired)
