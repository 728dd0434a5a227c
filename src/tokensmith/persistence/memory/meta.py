"""Server-wide values in memory, as ``SqlMetaStore`` (the master key's sealed check)."""

from __future__ import annotations

from tokensmith.persistence.memory._tables import Tables, round_trip

__all__ = ["MemoryMetaStore"]


class MemoryMetaStore:
    def __init__(self, tables: Tables | None = None) -> None:
        self._rows = (tables or Tables()).server_meta

    async def get(self, name: str) -> bytes | None:
        await round_trip()
        return self._rows.get(name)

    async def put_if_absent(self, name: str, value: bytes) -> bool:
        await round_trip()
        if name in self._rows:
            return False
        self._rows[name] = bytes(value)
        return True
