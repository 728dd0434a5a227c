"""Pushed authorization requests in memory (implements ``PushedRequestStore``).

``consume`` checks and marks with no ``await`` in between, as the SQL store's conditional
update does, so of concurrent uses one wins.
"""

from __future__ import annotations

from dataclasses import replace

from tokensmith.oauth.pushed_requests import PushedRequest
from tokensmith.persistence.memory._tables import (
    PURGE_BATCH,
    DuplicateKey,
    Tables,
    json_copy,
    round_trip,
)

__all__ = ["MemoryPushedRequestStore"]


class MemoryPushedRequestStore:
    def __init__(self, tables: Tables | None = None) -> None:
        self._tables = tables or Tables()
        self._rows = self._tables.pushed_requests

    async def add(self, pushed: PushedRequest) -> None:
        await round_trip()
        if pushed.request_hash in self._rows:
            raise DuplicateKey("pushed_requests.request_hash")
        self._rows[pushed.request_hash] = replace(pushed, params=json_copy(pushed.params))

    async def consume(self, request_hash: bytes, client_id: str, now: int) -> PushedRequest | None:
        await round_trip()
        pushed = self._rows.get(request_hash)
        if (
            pushed is None
            or pushed.client_id != client_id
            or pushed.used_at is not None
            or pushed.expires_at <= now
        ):
            return None
        used = self._rows[request_hash] = replace(pushed, used_at=now)
        return replace(used, params=json_copy(used.params))

    async def purge_expired(self, before: int, limit: int = PURGE_BATCH) -> int:
        await round_trip()
        expired = [key for key, row in self._rows.items() if row.expires_at < before][:limit]
        for key in expired:
            del self._rows[key]
        return len(expired)
