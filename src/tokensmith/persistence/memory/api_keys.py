"""API keys in memory (implements ``ApiKeyStore``), as ``SqlApiKeyStore``."""

from __future__ import annotations

from dataclasses import replace

from tokensmith.apikeys.records import ApiKeyRecord
from tokensmith.persistence.memory._tables import Tables, round_trip

__all__ = ["MemoryApiKeyStore"]


class MemoryApiKeyStore:
    def __init__(self, tables: Tables | None = None) -> None:
        self._rows = (tables or Tables()).api_keys

    async def add(self, record: ApiKeyRecord) -> bool:
        """False, with nothing changed, if the key id is taken."""
        await round_trip()
        if record.key_id in self._rows:
            return False
        self._rows[record.key_id] = replace(
            record, allowed_cidrs=tuple(record.allowed_cidrs), audiences=tuple(record.audiences)
        )
        return True

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        await round_trip()
        return self._rows.get(key_id)

    async def list(self, owner: str | None = None) -> list[ApiKeyRecord]:
        await round_trip()
        chosen = [r for r in self._rows.values() if owner is None or r.owner == owner]
        return sorted(chosen, key=lambda r: (r.created_at, r.key_id))

    async def revoke(self, key_id: str, at: int) -> bool:
        await round_trip()
        record = self._rows.get(key_id)
        if record is None or record.revoked_at is not None:
            return False
        self._rows[key_id] = replace(record, revoked_at=at)
        return True

    async def set_expiry(self, key_id: str, expires_at: int, replaced_by: str | None) -> bool:
        """Shorten the key's life to ``expires_at``, never lengthen it; name its successor."""
        await round_trip()
        record = self._rows.get(key_id)
        if record is None:
            return False
        if record.expires_at is not None:
            expires_at = min(record.expires_at, expires_at)
        self._rows[key_id] = replace(record, expires_at=expires_at, replaced_by=replaced_by)
        return True

    async def touch(self, last_used: dict[str, int]) -> None:
        """Record last-used times in one batch; unknown ids are passed over."""
        await round_trip()
        for key_id, at in last_used.items():
            record = self._rows.get(key_id)
            if record is not None:
                self._rows[key_id] = replace(record, last_used_at=at)
