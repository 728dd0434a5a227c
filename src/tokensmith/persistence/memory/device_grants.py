"""Device authorizations in memory (implements ``DeviceGrantStore``).

Each change checks its condition and writes with no ``await`` in between, as the SQL store's
conditional updates do, so of concurrent polls, decisions or redemptions one wins.
"""

from __future__ import annotations

from dataclasses import replace

from tokensmith.oauth.device_grants import DeviceDecision, DeviceGrant, Poll, next_interval
from tokensmith.oauth.transactions import Transaction
from tokensmith.persistence.memory._tables import PURGE_BATCH, Tables, joined, round_trip

__all__ = ["MemoryDeviceGrantStore"]


class MemoryDeviceGrantStore:
    def __init__(self, tables: Tables | None = None) -> None:
        self._tables = tables or Tables()
        self._rows = self._tables.device_grants

    async def add(self, grant: DeviceGrant) -> bool:
        await round_trip()
        taken = any(g.user_code_hash == grant.user_code_hash for g in self._rows.values())
        if grant.device_code_hash in self._rows or taken:
            return False
        self._rows[grant.device_code_hash] = grant
        return True

    async def get(self, device_code_hash: bytes) -> DeviceGrant | None:
        await round_trip()
        return self._rows.get(device_code_hash)

    async def find_by_user_code(self, user_code_hash: bytes) -> DeviceGrant | None:
        await round_trip()
        return next((g for g in self._rows.values() if g.user_code_hash == user_code_hash), None)

    async def poll(self, device_code_hash: bytes, client_id: str, now: int) -> Poll | None:
        await round_trip()
        grant = self._own(device_code_hash, client_id)
        if grant is None:
            return None
        last = grant.last_polled_at
        too_fast = last is not None and last + grant.poll_interval > now
        interval = next_interval(grant.poll_interval) if too_fast else grant.poll_interval
        polled = replace(grant, last_polled_at=now, poll_interval=interval)
        self._rows[device_code_hash] = polled
        return Poll(polled, too_fast=too_fast)

    async def decide(
        self, device_code_hash: bytes, decision: DeviceDecision, now: int
    ) -> DeviceGrant | None:
        await round_trip()
        grant = self._rows.get(device_code_hash)
        if grant is None or grant.status != "pending" or not grant.live(now):
            return None
        decided = replace(
            grant,
            status=decision.status,
            user_id=decision.user_id,
            auth_time=decision.auth_time,
            session_id=decision.session_id,
            decided_at=now,
        )
        self._rows[device_code_hash] = decided
        return decided

    async def redeem(self, device_code_hash: bytes, client_id: str, now: int) -> DeviceGrant | None:
        await round_trip()
        grant = self._own(device_code_hash, client_id)
        if grant is None or grant.status != "approved" or not grant.live(now):
            return None
        redeemed = self._rows[device_code_hash] = replace(grant, status="redeemed")
        return redeemed

    async def guard_issue(self, device_code_hash: bytes, tx: Transaction) -> None:
        def holds() -> bool:
            grant = self._rows.get(device_code_hash)
            user = self._tables.users.get(grant.user_id or "") if grant is not None else None
            return (
                grant is not None
                and grant.status == "redeemed"
                and user is not None
                and not user.disabled
            )

        joined(self._tables, tx).guard(holds)

    async def mark_replayed(self, device_code_hash: bytes, client_id: str) -> bool:
        await round_trip()
        grant = self._own(device_code_hash, client_id)
        if grant is None or grant.status != "redeemed":
            return False
        self._rows[device_code_hash] = replace(grant, status="replayed")
        return True

    async def delete_for_client(self, client_id: str) -> int:
        await round_trip()
        theirs = [key for key, grant in self._rows.items() if grant.client_id == client_id]
        for key in theirs:
            del self._rows[key]
        return len(theirs)

    async def purge_expired(self, before: int, limit: int = PURGE_BATCH) -> int:
        await round_trip()
        expired = [key for key, grant in self._rows.items() if grant.expires_at < before][:limit]
        for key in expired:
            del self._rows[key]
        return len(expired)

    def _own(self, device_code_hash: bytes, client_id: str) -> DeviceGrant | None:
        grant = self._rows.get(device_code_hash)
        return grant if grant is not None and grant.client_id == client_id else None
