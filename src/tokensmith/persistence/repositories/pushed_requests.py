"""Pushed authorization requests (implements ``oauth.pushed_requests.PushedRequestStore``).

A use is one conditional ``UPDATE ... RETURNING`` (RFC 9126 §4: one-time use), so of concurrent
uses on any number of nodes the database lets exactly one match.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tokensmith.oauth.pushed_requests import PushedRequest
from tokensmith.persistence.repositories._base import (
    PURGE_BATCH,
    Repository,
    as_dict,
    batch_delete,
    values_of,
)
from tokensmith.persistence.tables import pushed_requests as t

__all__ = ["SqlPushedRequestStore"]

_CONSUME = (
    sa.update(t)
    .where(
        t.c.request_hash == sa.bindparam("match_hash"),
        t.c.client_id == sa.bindparam("match_client"),
        t.c.used_at.is_(None),
        t.c.expires_at > sa.bindparam("now"),
    )
    .values(used_at=sa.bindparam("now"))
    .returning(*t.c)
)


def _record(row: sa.Row[Any]) -> PushedRequest:
    data = as_dict(row)
    data["request_hash"] = bytes(data["request_hash"])
    return PushedRequest(**data)


class SqlPushedRequestStore(Repository):
    async def add(self, pushed: PushedRequest) -> None:
        async with self.db.single() as conn:
            await conn.execute(sa.insert(t), values_of(t, pushed))

    async def consume(self, request_hash: bytes, client_id: str, now: int) -> PushedRequest | None:
        values = {"match_hash": request_hash, "match_client": client_id, "now": now}
        async with self.db.single() as conn:
            row = (await conn.execute(_CONSUME, values)).first()
        return _record(row) if row else None

    async def purge_expired(self, before: int, limit: int = PURGE_BATCH) -> int:
        statement = batch_delete(t, t.c.request_hash, t.c.expires_at < before, limit)
        async with self.db.begin() as conn:
            result = await conn.execute(statement)
        return result.rowcount
