"""Deleting what can no longer matter, in bounded batches (the maintenance loop runs it).

Each store deletes at most ``PURGE_BATCH`` rows per statement, so no purge holds a long lock or
a long transaction; the loop repeats a step until a batch comes back short, yields to the event
loop between batches, and stops for this round when its time budget is spent (the next round
carries on). What is kept, and for how long:

- codes, device authorizations, access-token records, login sessions: until ``margin`` after
  they expired or ended, so a late replay of a code is still recognised and a revoked JWT's
  record outlives the JWT;
- refresh families, with every token in them: until the family is over, i.e. past its absolute
  lifetime or with no token left that has not expired, plus ``margin``. Rotated tokens stay as
  long as their family, so reuse is detected until the family itself has ended;
- client-assertion ids: until ``margin`` after they expired;
- DPoP proofs seen: until they expired (a proof past its ``iat`` window is refused anyway);
- audit events: for the audit retention.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from tokensmith.accounts.sessions import SessionStore
from tokensmith.audit.events import AuditStore
from tokensmith.oauth.client_assertion import AssertionReplayStore
from tokensmith.oauth.device_grants import DeviceGrantStore
from tokensmith.oauth.dpop import ProofReplayStore
from tokensmith.oauth.grants import CodeStore
from tokensmith.oauth.tokens import RefreshStore, TokenStore
from tokensmith.persistence.repositories._base import PURGE_BATCH

__all__ = ["PurgeStores", "Retention", "purge"]

Step = Callable[[int], Awaitable[int]]  # deletes at most n rows, returns how many


@dataclass(frozen=True, slots=True)
class Retention:
    margin: int  # kept this long past expiry: the longest an access token lives
    family_max_lifetime: int
    audit_retention: int


class PurgeStores(Protocol):
    @property
    def codes(self) -> CodeStore: ...

    @property
    def device_grants(self) -> DeviceGrantStore: ...

    @property
    def tokens(self) -> TokenStore: ...

    @property
    def refresh(self) -> RefreshStore: ...

    @property
    def sessions(self) -> SessionStore: ...

    @property
    def assertions(self) -> AssertionReplayStore: ...

    @property
    def dpop_proofs(self) -> ProofReplayStore: ...

    @property
    def audit(self) -> AuditStore: ...


def _steps(stores: PurgeStores, now: int, keep: Retention) -> dict[str, Step]:
    before = now - keep.margin
    family_start = before - keep.family_max_lifetime
    return {
        "codes": lambda n: stores.codes.purge_expired(before, n),
        "device_grants": lambda n: stores.device_grants.purge_expired(before, n),
        "access_tokens": lambda n: stores.tokens.purge_expired(before, n),
        "refresh_families": lambda n: stores.refresh.purge_ended(before, family_start, n),
        "sessions": lambda n: stores.sessions.purge_ended(before, n),
        "assertions": lambda n: stores.assertions.purge_expired(before, n),
        "dpop_proofs": lambda n: stores.dpop_proofs.purge_expired(now, n),
        "audit_events": lambda n: stores.audit.purge(now - keep.audit_retention, n),
    }


async def purge(
    stores: PurgeStores,
    now: int,
    keep: Retention,
    *,
    batch: int = PURGE_BATCH,
    budget: float = 2.0,
    monotonic: Callable[[], float] = time.monotonic,
) -> dict[str, int]:
    """Run every purge step in batches; how many rows each deleted this round."""
    deadline = monotonic() + budget
    deleted: dict[str, int] = {}
    for name, step in _steps(stores, now, keep).items():
        deleted[name] = 0
        while True:
            count = await step(batch)
            deleted[name] += count
            if count < batch or monotonic() >= deadline:
                break
            await asyncio.sleep(0)  # let requests run between batches
        if monotonic() >= deadline:
            break
    return deleted
