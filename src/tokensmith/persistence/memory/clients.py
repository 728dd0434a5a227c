"""Clients in memory (implements ``ClientStore`` and ``LeakedSecretStore``), as ``SqlClientStore``.

``SqlClientStore`` keeps what it read for a second; this store has no cache to keep: every change
is seen at once, which is what a cached store shows of its own changes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tokensmith.oauth.clients import Client, ClientEncryption
from tokensmith.persistence.memory._tables import DuplicateKey, Tables, fresh, json_copy, round_trip

__all__ = ["MemoryClientStore"]


def _out(client: Client) -> Client:
    if client.jwks is not None:
        client = replace(client, jwks=fresh(client.jwks))
    if client.token_exchange is not None:
        client = replace(client, token_exchange=fresh(client.token_exchange))
    return client


class MemoryClientStore:
    def __init__(self, tables: Tables | None = None) -> None:
        self._rows = (tables or Tables()).clients

    async def add(self, client: Client) -> None:
        await round_trip()
        if client.client_id in self._rows:
            raise DuplicateKey(f"client {client.client_id!r} exists")
        self._rows[client.client_id] = replace(
            client, jwks=json_copy(client.jwks), token_exchange=json_copy(client.token_exchange)
        )

    async def get(self, client_id: str) -> Client | None:
        await round_trip()
        found = self._rows.get(client_id)
        return _out(found) if found is not None else None

    async def list(self) -> list[Client]:
        await round_trip()
        ordered = sorted(self._rows.values(), key=lambda c: (c.created_at, c.client_id))
        return [_out(c) for c in ordered]

    async def replace_secret(
        self, client_id: str, secret_hash: bytes, previous_expires_at: int | None, now: int
    ) -> bool:
        """Install a new secret; the old one keeps working until ``previous_expires_at``."""
        await round_trip()
        client = self._rows.get(client_id)
        if client is None or client.is_public:
            return False
        keep_previous = previous_expires_at is not None and previous_expires_at > now
        self._rows[client_id] = replace(
            client,
            previous_secret_hash=client.secret_hash if keep_previous else None,
            previous_secret_expires_at=previous_expires_at if keep_previous else None,
            secret_hash=secret_hash,
            updated_at=now,
        )
        return True

    async def find_by_secret(self, secret_hash: bytes) -> Client | None:
        """The client whose current or previous secret has this keyed hash (a leak report)."""
        await round_trip()
        for client in self._rows.values():
            if secret_hash in (client.secret_hash, client.previous_secret_hash):
                return _out(client)
        return None

    async def revoke_secret(self, client_id: str, secret_hash: bytes, now: int) -> bool:
        """Stop accepting this one secret of the client; the other one, if any, keeps working."""
        await round_trip()
        client = self._rows.get(client_id)
        if client is None:
            return False
        changed = client
        if client.secret_hash == secret_hash:
            changed = replace(changed, secret_hash=None, updated_at=now)
        if client.previous_secret_hash == secret_hash:
            changed = replace(
                changed, previous_secret_hash=None, previous_secret_expires_at=None, updated_at=now
            )
        self._rows[client_id] = changed
        return changed is not client

    async def set_may_vouch_client_ip(self, client_id: str, allowed: bool, now: int) -> bool:
        """Grant or withdraw the right to name callers' addresses; public clients never get it."""
        await round_trip()
        client = self._rows.get(client_id)
        if client is None or client.is_public:
            return False
        self._rows[client_id] = replace(client, may_vouch_client_ip=allowed, updated_at=now)
        return True

    async def set_token_exchange(
        self, client_id: str, policy: dict[str, Any] | None, now: int
    ) -> bool:
        """Replace the token exchange policy (validated by the caller); never a public client's."""
        await round_trip()
        client = self._rows.get(client_id)
        if client is None or client.is_public:
            return False
        self._rows[client_id] = replace(client, token_exchange=json_copy(policy), updated_at=now)
        return True

    async def set_dpop_bound_access_tokens(self, client_id: str, required: bool, now: int) -> bool:
        return await self._set(client_id, now, dpop_bound_access_tokens=required)

    async def set_refresh_grace(self, client_id: str, seconds: int | None, now: int) -> bool:
        return await self._set(client_id, now, refresh_grace=seconds)

    async def set_require_par(self, client_id: str, required: bool, now: int) -> bool:
        return await self._set(client_id, now, require_pushed_authorization_requests=required)

    async def _set(self, client_id: str, now: int, **values: Any) -> bool:
        await round_trip()
        client = self._rows.get(client_id)
        if client is None:
            return False
        self._rows[client_id] = replace(client, **values, updated_at=now)
        return True

    async def set_encryption(self, client_id: str, choices: ClientEncryption, now: int) -> bool:
        """Replace what the client's ID tokens and userinfo are encrypted with."""
        await round_trip()
        client = self._rows.get(client_id)
        if client is None:
            return False
        self._rows[client_id] = replace(
            client,
            id_token_encrypted_response_alg=choices.id_token[0],
            id_token_encrypted_response_enc=choices.id_token[1],
            userinfo_encrypted_response_alg=choices.userinfo[0],
            userinfo_encrypted_response_enc=choices.userinfo[1],
            updated_at=now,
        )
        return True

    async def delete(self, client_id: str) -> bool:
        await round_trip()
        return self._rows.pop(client_id, None) is not None
