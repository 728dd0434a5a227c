"""Leaked client secrets reported by a secret-scanning partner (``POST /api-keys/leaks``).

A candidate of the client-secret shape whose checksum holds (checked offline, before any hashing
or query) is looked up by its keyed hash. A genuine one is revoked at once: that one secret stops
authenticating the client in this process immediately and in others within the client cache's
second; the client's other secret, during a rotation's overlap, keeps working, so the owner can
finish rotating. An audit event and a webhook (``client.secret_leaked``) follow, as for API keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tokensmith.apikeys.lifecycle import LeakReport, LeakVerdict
from tokensmith.audit.events import AuditEvent
from tokensmith.core.clock import Clock
from tokensmith.core.secrets import keyed_hash
from tokensmith.oauth.clients import Client, is_client_secret

__all__ = ["ClientSecretLeaks", "LeakedSecretStore", "looks_like_client_secret"]

LEAK_EVENT = "client.secret_leaked"


def looks_like_client_secret(token: str) -> bool:
    return token.startswith("tscs_")


class LeakedSecretStore(Protocol):
    async def find_by_secret(self, secret_hash: bytes) -> Client | None: ...

    async def revoke_secret(self, client_id: str, secret_hash: bytes, now: int) -> bool: ...


class AuditWriter(Protocol):
    async def write(self, event: AuditEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class ClientSecretLeaks:
    clients: LeakedSecretStore
    pepper: bytes
    clock: Clock
    audit: AuditWriter
    notify: Callable[[str, dict[str, Any]], None] | None = None

    async def judge(self, report: LeakReport, reporter: str) -> LeakVerdict:
        token_hash = hashlib.sha256(report.token.encode("utf-8", "replace")).hexdigest()
        if not is_client_secret(report.token):
            return LeakVerdict(token_hash, report.type, "false_positive")
        secret_hash = keyed_hash(self.pepper, report.token)
        client = await self.clients.find_by_secret(secret_hash)
        if client is None:
            return LeakVerdict(token_hash, report.type, "false_positive")
        now = self.clock.now()
        revoked_now = await self.clients.revoke_secret(client.client_id, secret_hash, now)
        where = {"url": report.url[:2048], "source": report.source[:200], "reporter": reporter}
        await self.audit.write(
            AuditEvent(
                at=now,
                event=LEAK_EVENT,
                outcome="success",
                actor=f"reporter:{reporter}",
                client_id=client.client_id,
                detail={**where, "name": client.name, "revoked": revoked_now},
            )
        )
        if self.notify is not None:
            payload = {"client_id": client.client_id, "name": client.name, "revoked_at": now}
            self.notify(LEAK_EVENT, {**payload, **where})
        return LeakVerdict(token_hash, report.type, "true_positive")
