"""Authorization codes and consents in memory (implements ``CodeStore``, ``ConsentStore``).

A code is consumed by its own client exactly once, however many callers try at once: the check of
``consumed_at`` and the write run with no ``await`` between them (``SqlCodeStore``'s conditional
update).
"""

from __future__ import annotations

from dataclasses import replace

from tokensmith.oauth.grants import AuthorizationCode, Consent
from tokensmith.oauth.transactions import Transaction
from tokensmith.persistence.memory._tables import (
    PURGE_BATCH,
    DuplicateKey,
    Tables,
    joined,
    round_trip,
)

__all__ = ["MemoryCodeStore", "MemoryConsentStore"]


class MemoryCodeStore:
    def __init__(self, tables: Tables | None = None) -> None:
        self._tables = tables or Tables()
        self._rows = self._tables.authorization_codes

    async def add(self, code: AuthorizationCode) -> None:
        await round_trip()
        if code.code_hash in self._rows:
            raise DuplicateKey("the code exists")
        self._rows[code.code_hash] = code

    async def consume(self, code_hash: bytes, client_id: str, now: int) -> AuthorizationCode | None:
        await round_trip()
        code = self._rows.get(code_hash)
        if code is None or code.client_id != client_id or code.consumed_at is not None:
            return None
        spent = self._rows[code_hash] = replace(code, consumed_at=now)
        return spent

    async def guard_issue(self, code_hash: bytes, tx: Transaction) -> None:
        def holds() -> bool:
            code = self._rows.get(code_hash)
            user = self._tables.users.get(code.user_id) if code is not None else None
            return (
                code is not None
                and code.replayed_at is None
                and user is not None
                and (not user.disabled)
            )

        joined(self._tables, tx).guard(holds)

    async def get(self, code_hash: bytes) -> AuthorizationCode | None:
        await round_trip()
        return self._rows.get(code_hash)

    async def mark_replayed(self, code_hash: bytes, now: int) -> None:
        await round_trip()
        code = self._rows.get(code_hash)
        if code is not None and code.replayed_at is None:
            self._rows[code_hash] = replace(code, replayed_at=now)

    async def delete_for_client(self, client_id: str) -> int:
        await round_trip()
        theirs = [key for key, code in self._rows.items() if code.client_id == client_id]
        for key in theirs:
            del self._rows[key]
        return len(theirs)

    async def purge_expired(self, before: int, limit: int = PURGE_BATCH) -> int:
        await round_trip()
        expired = [key for key, code in self._rows.items() if code.expires_at < before][:limit]
        for key in expired:
            del self._rows[key]
        return len(expired)


class MemoryConsentStore:
    def __init__(self, tables: Tables | None = None) -> None:
        self._rows = (tables or Tables()).consents

    async def get(self, user_id: str, client_id: str) -> Consent | None:
        await round_trip()
        return self._rows.get((user_id, client_id))

    async def put(self, consent: Consent) -> None:
        """Insert, or replace the scope and time of the one there (``SqlConsentStore.put``)."""
        await round_trip()
        key = (consent.user_id, consent.client_id)
        current = self._rows.get(key)
        self._rows[key] = (
            replace(current, scope=consent.scope, updated_at=consent.updated_at)
            if current is not None
            else consent
        )

    async def revoke(self, user_id: str, client_id: str) -> bool:
        await round_trip()
        return self._rows.pop((user_id, client_id), None) is not None
