"""Signing keys in memory (implements ``SigningKeyStore``), as ``SqlSigningKeyStore``.

At most one ``active`` and one ``next`` key, as the SQL partial unique indexes allow: ``add_key``
refuses a second, and ``promote`` moves both keys or neither.
"""

from __future__ import annotations

from dataclasses import replace

from tokensmith.jose.keyring import KeyRecord, KeyState
from tokensmith.persistence.memory._tables import DuplicateKey, Tables, fresh, json_copy, round_trip

__all__ = ["MemorySigningKeyStore"]

_ONE_OF = ("active", "next")  # states at most one key may hold


class MemorySigningKeyStore:
    def __init__(self, tables: Tables | None = None) -> None:
        self._rows = (tables or Tables()).signing_keys

    async def list_keys(self, states: tuple[KeyState, ...]) -> list[KeyRecord]:
        """Newest first."""
        await round_trip()
        chosen = [r for r in self._rows.values() if r.state in states]
        chosen.sort(key=lambda r: r.created_at, reverse=True)
        return [replace(r, public_jwk=fresh(r.public_jwk)) for r in chosen]

    async def add_key(self, record: KeyRecord) -> bool:
        """False if the kid exists or its state is held (one active key, one next key)."""
        await round_trip()
        if record.kid in self._rows or self._holder(record.state) is not None:
            return False
        self._rows[record.kid] = replace(record, public_jwk=json_copy(record.public_jwk))
        return True

    async def delete_key(self, kid: str, state: KeyState) -> bool:
        await round_trip()
        record = self._rows.get(kid)
        if record is None or record.state != state:
            return False
        del self._rows[kid]
        return True

    async def promote(self, next_kid: str, active_kid: str | None, now: int, until: int) -> bool:
        """Atomically: active -> retiring (published until ``until``), next -> active."""
        await round_trip()
        active = self._rows.get(active_kid) if active_kid is not None else None
        nxt = self._rows.get(next_kid)
        if active_kid is not None and (active is None or active.state != "active"):
            return False
        if nxt is None or nxt.state != "next":
            return False
        if active is None and self._holder("active") is not None:
            # Named no active key while there is one: the unique index refuses a second.
            raise DuplicateKey("another key is active")
        if active is not None:
            self._rows[active.kid] = replace(
                active, state="retiring", retiring_at=now, publish_until=until
            )
        self._rows[nxt.kid] = replace(nxt, state="active", activated_at=now)
        return True

    async def retire_expired(self, now: int) -> list[str]:
        """Retiring keys whose publication has ended become retired; their private half goes."""
        await round_trip()
        ended = [
            r
            for r in self._rows.values()
            if r.state == "retiring" and r.publish_until is not None and r.publish_until <= now
        ]
        for record in ended:
            self._rows[record.kid] = replace(record, state="retired", private_sealed=None)
        return [r.kid for r in ended]

    def _holder(self, state: KeyState) -> KeyRecord | None:
        if state not in _ONE_OF:
            return None
        return next((r for r in self._rows.values() if r.state == state), None)
