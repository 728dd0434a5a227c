"""persistence/purge.py on every backend: what is over goes, in batches; what may matter stays."""

from __future__ import annotations

import pytest

from tests.persistence.conftest import Stores, h
from tests.persistence.test_grants import code
from tests.support import BACKENDS
from tokensmith.accounts.sessions import Session
from tokensmith.audit.events import AuditEvent, AuditQuery
from tokensmith.core.clock import FrozenClock
from tokensmith.oauth.device_grants import DeviceGrant
from tokensmith.oauth.tokens import IssuedToken, RefreshFamily, RefreshToken
from tokensmith.persistence import memory
from tokensmith.persistence.purge import Retention, purge
from tokensmith.persistence.repositories._base import PURGE_BATCH

pytestmark = [pytest.mark.anyio, pytest.mark.backends(*BACKENDS)]
DAY = 86400
KEEP = Retention(margin=3600, family_max_lifetime=90 * DAY, audit_retention=30 * DAY)


def token(jti: str, expires_at: int) -> IssuedToken:
    return IssuedToken(jti, "c1", "u1", "api", "https://api", "jwt", expires_at - 300, expires_at)


def device_grant(name: str, expires_at: int) -> DeviceGrant:
    return DeviceGrant(h(name), h(f"user-{name}"), "c1", "api", expires_at - 600, expires_at, 5)


async def family(stores: Stores, family_id: str, created_at: int, *expiries: int) -> list[bytes]:
    """A family whose tokens expire at ``expiries``; all but the last have been rotated."""
    hashes = [h(f"{family_id}-{i}") for i in range(len(expiries))]
    tokens = [
        RefreshToken(hashes[i], family_id, "api", created_at + i, expiry)
        for i, expiry in enumerate(expiries)
    ]
    await stores.refresh.create_family(
        RefreshFamily(family_id, "c1", "u1", "api", created_at), tokens[0]
    )
    for i, successor in enumerate(tokens[1:]):
        rotated = await stores.refresh.rotate(hashes[i], successor, created_at + i + 1)
        assert rotated.outcome == "rotated"
    return hashes


async def test_purge_deletes_what_is_over_and_keeps_the_rest(
    stores: Stores, clock: FrozenClock
) -> None:
    now = clock.now()
    margin = KEEP.margin
    for i in range(5):  # more than one batch of two
        await stores.codes.add(code(h(f"old-code-{i}"), expires_at=now - margin - 1))
    await stores.codes.add(code(h("late-replay"), expires_at=now - margin + 10))
    for i in range(3):
        await stores.tokens.add(token(f"old-{i}", now - margin - 1))
    await stores.tokens.add(token("revoked-jwt-still-valid-a-while", now - margin + 10))
    old_family = await family(stores, "ended", now - 40 * DAY, now - margin - 5)
    # Rotated long ago, its successor still live: reuse of the old token must still be caught.
    live = await family(stores, "live", now - 40 * DAY, now - 10 * DAY, now + DAY)
    too_old = await family(stores, "too-old", now - 91 * DAY - margin, now + DAY)
    await stores.sessions.add(
        Session(h("gone"), "u1", now - DAY, "pwd", now - DAY, now - margin - 1)
    )
    await stores.sessions.add(Session(h("open"), "u1", now, "pwd", now, now + 3600))
    for at in (now - 31 * DAY, now - 31 * DAY + 1, now - DAY):
        await stores.audit.append([AuditEvent(at=at, event="e", outcome="success")])
    for i in range(3):
        await stores.device_grants.add(device_grant(f"old-{i}", expires_at=now - margin - 1))
    await stores.device_grants.add(device_grant("recent", expires_at=now - margin + 10))
    # DPoP proofs go once they expire: past their iat window they are refused anyway.
    await stores.dpop_proofs.remember(h("stale-proof"), now - 1)
    await stores.dpop_proofs.remember(h("live-proof"), now + 60)

    deleted = await purge(stores, now, KEEP, batch=2)

    assert deleted == {
        "codes": 5,
        "device_grants": 3,
        "access_tokens": 3,
        "refresh_families": 2,
        "sessions": 1,
        "assertions": 0,
        "dpop_proofs": 1,
        "audit_events": 2,
    }
    assert await stores.codes.get(h("late-replay")) is not None
    assert await stores.tokens.get_by_jti("revoked-jwt-still-valid-a-while") is not None
    for gone in (old_family[0], too_old[0]):
        assert await stores.refresh.get(gone) is None
    kept = await stores.refresh.get(live[0])
    assert kept is not None and kept[0].rotated_at is not None
    assert await stores.sessions.get(h("open")) is not None
    assert await stores.sessions.get(h("gone")) is None
    assert await stores.device_grants.get(h("recent")) is not None
    assert await stores.device_grants.get(h("old-0")) is None
    events = await stores.audit.query(AuditQuery(limit=10))
    assert [e.at for e in events] == [now - DAY]
    assert not await stores.dpop_proofs.remember(h("live-proof"), now + 60)
    assert set((await purge(stores, now, KEEP, batch=2)).values()) == {0}


async def test_purge_stops_at_its_time_budget(stores: Stores, clock: FrozenClock) -> None:
    now = clock.now()
    for i in range(5):
        await stores.codes.add(code(h(f"c{i}"), expires_at=now - KEEP.margin - 1))
    ticks = iter([0.0, 5.0, 5.0])  # the budget runs out after the first batch
    deleted = await purge(stores, now, KEEP, batch=2, budget=1.0, monotonic=lambda: next(ticks))
    assert deleted == {"codes": 2}
    again = await purge(stores, now, KEEP, batch=2)
    assert again["codes"] == 3  # the next round carries on


def test_the_memory_stores_purge_in_batches_of_the_same_size() -> None:
    assert memory.PURGE_BATCH == PURGE_BATCH
