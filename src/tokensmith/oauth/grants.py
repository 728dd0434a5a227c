"""What a user has granted and the short-lived proof of it: consents and authorization codes.

Codes are stored by keyed hash, live at most 60 s, and are consumed by a conditional update so
that exactly one of any number of concurrent exchanges wins (RFC 6749 §4.1.2, RFC 9700 §4.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tokensmith.oauth.transactions import Transaction

__all__ = ["AuthorizationCode", "CodeStore", "Consent", "ConsentStore"]

MAX_CODE_LIFETIME = 60


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    code_hash: bytes
    client_id: str
    user_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    created_at: int
    expires_at: int
    nonce: str | None = None
    auth_time: int | None = None
    session_id: str | None = None
    resource: str | None = None
    consumed_at: int | None = None
    replayed_at: int | None = None
    dpop_jkt: str | None = None  # RFC 9449 §10: the key the code's tokens must be bound to


class CodeStore(Protocol):
    async def add(self, code: AuthorizationCode) -> None: ...

    async def consume(self, code_hash: bytes, client_id: str, now: int) -> AuthorizationCode | None:
        """Mark used and return it, once, to the client it was issued to. A second call, or
        another client's, returns None; another client's leaves the code unspent."""
        ...

    async def guard_issue(self, code_hash: bytes, tx: Transaction) -> None:
        """Let ``tx`` commit only if the code was not replayed (nor deleted) and its user exists
        and is enabled, checked after the transaction's writes. A replay's mark then waits for
        the commit, so its revocation sees what was stored, or refuses it, so nothing is."""
        ...

    async def get(self, code_hash: bytes) -> AuthorizationCode | None: ...

    async def mark_replayed(self, code_hash: bytes, now: int) -> None: ...

    async def delete_for_client(self, client_id: str) -> int:
        """Drop a client's codes, spent or not (it is being deleted)."""
        ...

    async def purge_expired(self, before: int, limit: int = ...) -> int:
        """Delete at most ``limit`` rows that expired before ``before``; how many went."""
        ...


@dataclass(frozen=True, slots=True)
class Consent:
    user_id: str
    client_id: str
    scope: str
    updated_at: int


class ConsentStore(Protocol):
    async def get(self, user_id: str, client_id: str) -> Consent | None: ...

    async def put(self, consent: Consent) -> None: ...

    async def revoke(self, user_id: str, client_id: str) -> bool: ...
