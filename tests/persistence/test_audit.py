"""The audit store's contract, on every backend: append-only, newest first, purged oldest first."""

from __future__ import annotations

import os

import pytest

from tests.persistence.conftest import NOW, Stores
from tests.support import BACKENDS
from tokensmith.audit.events import AuditEvent, AuditQuery

pytestmark = [pytest.mark.anyio, pytest.mark.backends(*BACKENDS)]


async def test_audit_trail(stores: Stores) -> None:
    events = [
        AuditEvent(
            NOW + i,
            "token.issued",
            "success",
            client_id=f"c{i % 2}",
            subject="u1",
            fingerprint=os.urandom(4).hex(),
            detail={"scope": "api"},
        )
        for i in range(10)
    ]
    await stores.audit.append(events)
    await stores.audit.append([])
    newest = await stores.audit.query(AuditQuery(limit=3))
    assert [e.at for e in newest] == [NOW + 9, NOW + 8, NOW + 7]
    assert newest[0].detail == {"scope": "api"}
    assert len(await stores.audit.query(AuditQuery(client_id="c1"))) == 5
    assert len(await stores.audit.query(AuditQuery(since=NOW + 8))) == 2
    assert await stores.audit.query(AuditQuery(subject="x' OR 1=1 --")) == []
    assert await stores.audit.purge(NOW + 5) == 5


async def test_events_come_back_whole_with_ids_in_order(stores: Stores) -> None:
    event = AuditEvent(
        NOW,
        "client.created",
        "info",
        actor="cli",
        client_id="c1",
        subject="u1",
        source_ip="192.0.2.1",
        user_agent="curl/8",
        fingerprint="f1",
        detail={"nested": {"list": [1, "two"]}, "when": NOW},
        event_id=999,  # the store numbers events itself
    )
    await stores.audit.append([event, AuditEvent(NOW, "client.deleted", "success")])
    second, first = await stores.audit.query(AuditQuery())
    assert first.event_id is not None and second.event_id is not None
    assert second.event_id > first.event_id  # same time: the later one first
    assert (first.event, second.event) == ("client.created", "client.deleted")
    assert (first.actor, first.source_ip, first.user_agent) == ("cli", "192.0.2.1", "curl/8")
    assert first.detail == {"nested": {"list": [1, "two"]}, "when": NOW}
    assert second.detail == {} and second.outcome == "success"


async def test_what_json_cannot_hold_is_stored_as_text(stores: Stores) -> None:
    await stores.audit.append([AuditEvent(NOW, "e", "info", detail={"raw": b"x", "ids": (1, 2)})])
    (stored,) = await stores.audit.query(AuditQuery())
    assert stored.detail == {"raw": "b'x'", "ids": [1, 2]}


async def test_queries_filter_by_event_and_take_between_one_and_ten_thousand(
    stores: Stores,
) -> None:
    await stores.audit.append(
        [
            AuditEvent(NOW + i, "login.failure" if i % 3 else "login.success", "info")
            for i in range(9)
        ]
    )
    successes = await stores.audit.query(AuditQuery(event="login.success"))
    assert [e.at for e in successes] == [NOW + 6, NOW + 3, NOW]
    assert len(await stores.audit.query(AuditQuery(limit=0))) == 1
    assert len(await stores.audit.query(AuditQuery(limit=-5))) == 1
    assert len(await stores.audit.query(AuditQuery(limit=10**9))) == 9
    both = await stores.audit.query(AuditQuery(event="login.failure", since=NOW + 5))
    assert [e.at for e in both] == [NOW + 8, NOW + 7, NOW + 5]


async def test_a_purge_takes_the_oldest_first_and_at_most_its_limit(stores: Stores) -> None:
    await stores.audit.append([AuditEvent(NOW + i, f"e{i}", "info") for i in (4, 0, 3, 1, 2, 9)])
    assert await stores.audit.purge(NOW + 5, limit=2) == 2
    assert [e.event for e in await stores.audit.query(AuditQuery())] == ["e9", "e4", "e3", "e2"]
    assert await stores.audit.purge(NOW + 5, limit=2) == 2
    assert await stores.audit.purge(NOW + 5) == 1
    assert await stores.audit.purge(NOW + 5) == 0
    assert [e.event for e in await stores.audit.query(AuditQuery())] == ["e9"]
