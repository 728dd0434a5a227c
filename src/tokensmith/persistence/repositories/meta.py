"""Server-wide values, such as the sealed check that proves the master key fits this database."""

from __future__ import annotations

import sqlalchemy as sa

from tokensmith.persistence.repositories._base import Repository
from tokensmith.persistence.tables import server_meta

__all__ = ["SqlMetaStore"]


class SqlMetaStore(Repository):
    async def get(self, name: str) -> bytes | None:
        async with self.db.connect() as conn:
            value = await conn.scalar(
                sa.select(server_meta.c.value).where(server_meta.c.name == name)
            )
        return bytes(value) if value is not None else None

    async def put_if_absent(self, name: str, value: bytes) -> bool:
        return await self.insert_new(server_meta, {"name": name, "value": value})
