"""Seen client-assertion ids in memory (implements ``AssertionReplayStore``)."""

from __future__ import annotations

from tokensmith.persistence.memory._tables import PURGE_BATCH, Tables, round_trip

__all__ = ["MemoryAssertionStore"]


class MemoryAssertionStore:
    def __init__(self, tables: Tables | None = None) -> None:
        self._rows = (tables or Tables()).client_assertions

    async def remember(self, client_id: str, jti: str, expires_at: int) -> bool:
        """Record a jti; False if this client already used it."""
        await round_trip()
        if (client_id, jti) in self._rows:
            return False
        self._rows[client_id, jti] = expires_at
        return True

    async def purge_expired(self, before: int, limit: int = PURGE_BATCH) -> int:
        await round_trip()
        expired = [key for key, expires_at in self._rows.items() if expires_at < before][:limit]
        for key in expired:
            del self._rows[key]
        return len(expired)
