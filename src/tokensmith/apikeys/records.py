"""What is stored of an API key: its public identifier and a keyed hash, never the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["ApiKeyRecord", "ApiKeyStore"]


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    key_id: str
    name: str
    owner: str
    secret_hash: bytes = field(repr=False)
    scope: str
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None
    last_used_at: int | None = None
    allowed_cidrs: tuple[str, ...] = ()
    rate_limit: int | None = None
    replaced_by: str | None = None
    audiences: tuple[str, ...] = ()  # the resources it may be presented to; empty: any


class ApiKeyStore(Protocol):
    async def add(self, record: ApiKeyRecord) -> bool:
        """False if the key id is taken."""
        ...

    async def get(self, key_id: str) -> ApiKeyRecord | None: ...

    async def list(self, owner: str | None = None) -> list[ApiKeyRecord]: ...

    async def revoke(self, key_id: str, at: int) -> bool: ...

    async def set_expiry(self, key_id: str, expires_at: int, replaced_by: str | None) -> bool: ...

    async def touch(self, last_used: dict[str, int]) -> None:
        """Record last-used times in one batch."""
        ...
