"""Clients (implements ``tokensmith.oauth.clients.ClientStore``).

Every token, introspection and revocation request looks its client up, so ``get`` keeps what it
read for ``CLIENT_CACHE_SECONDS`` (one second): under load nearly every lookup is then served from
memory (docs/performance.md). Changes made through this store are seen at once; changes made by
another process (the CLI, another node) within that second. Unknown ids are kept the same way, so
that a known and an unknown id cost the same; the cache holds at most ``_CACHE_LIMIT`` entries and
starts afresh when full, so guessing ids costs lookups, never memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.oauth.clients import Client, ClientEncryption
from tokensmith.persistence.repositories._base import Repository, as_dict, select_by, values_of
from tokensmith.persistence.tables import clients as t

__all__ = ["CLIENT_CACHE_SECONDS", "SqlClientStore"]

CLIENT_CACHE_SECONDS = 1.0
_CACHE_LIMIT = 4096

_TUPLES = (
    "grant_types",
    "redirect_uris",
    "cors_origins",
    "post_logout_redirect_uris",
    "allowed_resources",
)
_BYTES = ("secret_hash", "previous_secret_hash")


_CLIENT_BY_ID = select_by(t, "client_id")


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
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        cache_seconds: float = CLIENT_CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(engine)
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, Client | None]] = {}

    async def add(self, client: Client) -> None:
        async with self.db.begin() as conn:
            await conn.execute(sa.insert(t), _values(client))
        self._cache.pop(client.client_id, None)

    async def get(self, client_id: str) -> Client | None:
        now = self._monotonic()
        cached = self._cache.get(client_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self.db.connect() as conn:
            row = (await conn.execute(_CLIENT_BY_ID, {"client_id": client_id})).first()
        # Unknown ids are remembered too: a known and an unknown id then cost the same lookup,
        # so the time of an invalid_client answer says nothing about which it was (SECURITY 31).
        client = _record(row) if row is not None else None
        if self._cache_seconds > 0:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[client_id] = (now + self._cache_seconds, client)
        return client

    async def list(self) -> list[Client]:
        async with self.db.connect() as conn:
            rows = await conn.execute(sa.select(t).order_by(t.c.created_at, t.c.client_id))
            return [_record(row) for row in rows]

    async def replace_secret(
        self, client_id: str, secret_hash: bytes, previous_expires_at: int | None, now: int
    ) -> bool:
        """Install a new secret; the old one keeps working until ``previous_expires_at``."""
        keep_previous = previous_expires_at is not None and previous_expires_at > now
        self._cache.pop(client_id, None)
        async with self.db.begin() as conn:
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
        self._cache.pop(client_id, None)
        return result.rowcount == 1

    async def find_by_secret(self, secret_hash: bytes) -> Client | None:
        """The client whose current or previous secret has this keyed hash (a leak report)."""
        query = sa.select(t).where(
            sa.or_(t.c.secret_hash == secret_hash, t.c.previous_secret_hash == secret_hash)
        )
        async with self.db.connect() as conn:
            row = (await conn.execute(query)).first()
        return _record(row) if row is not None else None

    async def revoke_secret(self, client_id: str, secret_hash: bytes, now: int) -> bool:
        """Stop accepting this one secret of the client at once; the other one, if any (a
        rotation's overlap), keeps working. Whether anything changed."""
        self._cache.pop(client_id, None)
        mine = t.c.client_id == client_id
        async with self.db.begin() as conn:
            current = await conn.execute(
                sa.update(t)
                .where(mine, t.c.secret_hash == secret_hash)
                .values(secret_hash=None, updated_at=now)
            )
            previous = await conn.execute(
                sa.update(t)
                .where(mine, t.c.previous_secret_hash == secret_hash)
                .values(previous_secret_hash=None, previous_secret_expires_at=None, updated_at=now)
            )
        self._cache.pop(client_id, None)
        return current.rowcount + previous.rowcount > 0

    async def set_may_vouch_client_ip(self, client_id: str, allowed: bool, now: int) -> bool:
        """Grant or withdraw the right to name callers' addresses; public clients never get it."""
        return await self._set(client_id, now, {"may_vouch_client_ip": allowed}, confidential=True)

    async def set_token_exchange(
        self, client_id: str, policy: dict[str, Any] | None, now: int
    ) -> bool:
        """Replace the token exchange policy (validated by the caller); never a public client's."""
        return await self._set(client_id, now, {"token_exchange": policy}, confidential=True)

    async def set_dpop_bound_access_tokens(self, client_id: str, required: bool, now: int) -> bool:
        return await self._set(client_id, now, {"dpop_bound_access_tokens": required})

    async def set_refresh_grace(self, client_id: str, seconds: int | None, now: int) -> bool:
        return await self._set(client_id, now, {"refresh_grace": seconds})

    async def set_require_par(self, client_id: str, required: bool, now: int) -> bool:
        return await self._set(client_id, now, {"require_pushed_authorization_requests": required})

    async def set_encryption(self, client_id: str, choices: ClientEncryption, now: int) -> bool:
        """Replace what the client's ID tokens and userinfo are encrypted with."""
        return await self._set(client_id, now, choices.columns())

    async def _set(
        self, client_id: str, now: int, values: dict[str, Any], *, confidential: bool = False
    ) -> bool:
        """Change ``values`` of one client (only a confidential one, if so said); False if
        there is none. The cache forgets it before and after, so no read keeps the old row."""
        self._cache.pop(client_id, None)
        condition = [t.c.client_id == client_id]
        if confidential:
            condition.append(t.c.is_public.is_(False))
        async with self.db.begin() as conn:
            result = await conn.execute(
                sa.update(t).where(*condition).values(**values, updated_at=now)
            )
        self._cache.pop(client_id, None)
        return result.rowcount == 1

    async def delete(self, client_id: str) -> bool:
        self._cache.pop(client_id, None)
        async with self.db.begin() as conn:
            result = await conn.execute(sa.delete(t).where(t.c.client_id == client_id))
        self._cache.pop(client_id, None)
        return result.rowcount == 1
