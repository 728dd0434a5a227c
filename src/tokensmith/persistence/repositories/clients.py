"""Clients (implements ``tokensmith.oauth.clients.ClientStore``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tokensmith.oauth.clients import Client
from tokensmith.persistence.repositories._base import Repository, as_dict, values_of
from tokensmith.persistence.tables import clients as t

__all__ = ["SqlClientStore"]

_TUPLES = (
    "grant_types",
    "redirect_uris",
    "cors_origins",
    "post_logout_redirect_uris",
    "allowed_resources",
)
_BYTES = ("secret_hash", "previous_secret_hash")


def _record(row: sa.Row[Any]) -> Client:
    data = as_dict(row)
    for name in _TUPLES:
        data[name] = tuple(data[name])
    for name in _BYTES:
        data[name] = bytes(data[name]) if data[name] is not None else None
    return Client(**data)


def _values(client: Client) -> dict[str, Any]:
    values = values_of(t, client)
    for name in _TUPLES:
        values[name] = list(values[name])
    return values


class SqlClientStore(Repository):
    async def add(self, client: Client) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.insert(t).values(**_values(client)))

    async def get(self, client_id: str) -> Client | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(t).where(t.c.client_id == client_id))).first()
        return _record(row) if row else None

    async def list(self) -> list[Client]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(t).order_by(t.c.created_at, t.c.client_id))
            return [_record(row) for row in rows]

    async def replace_secret(
        self, client_id: str, secret_hash: bytes, previous_expires_at: int | None, now: int
    ) -> bool:
        """Install a new secret; the old one keeps working until ``previous_expires_at``."""
        keep_previous = previous_expires_at is not None and previous_expires_at > now
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sa.update(t)
                .where(t.c.client_id == client_id, t.c.is_public.is_(False))
                .values(
                    previous_secret_hash=t.c.secret_hash if keep_previous else None,
                    previous_secret_expires_at=previous_expires_at if keep_previous else None,
                    secret_hash=secret_hash,
                    updated_at=now,
                )
            )
        return result.rowcount == 1

    async def delete(self, client_id: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(sa.delete(t).where(t.c.client_id == client_id))
        return result.rowcount == 1
