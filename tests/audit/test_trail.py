"""The audit trail's writer: batches, a bounded queue, retries, and request origins."""

from __future__ import annotations

import pytest

from tokensmith.audit.events import AuditEvent, AuditQuery
from tokensmith.audit.trail import AuditLine, AuditTrail, Origin, request_origin

pytestmark = pytest.mark.anyio


class Store:
    def __init__(self) -> None:
        self.batches: list[list[AuditEvent]] = []
        self.fail = False

    async def append(self, events: list[AuditEvent]) -> None:
        if self.fail:
            raise OSError("database gone")
        self.batches.append(list(events))

    async def query(self, query: AuditQuery) -> list[AuditEvent]:
        return [e for batch in self.batches for e in batch]

    async def purge(self, before: int) -> int:
        return 0


def event(n: int = 0) -> AuditEvent:
    return AuditEvent(at=n, event="token.issued", outcome="success")


async def test_request_events_are_stored_in_one_batch() -> None:
    store = Store()
    trail = AuditTrail(store)
    for n in range(5):
        trail.record(event(n))
    assert store.batches == [] and trail.pending == 5
    assert await trail.flush() == 5
    assert [[e.at for e in batch] for batch in store.batches] == [[0, 1, 2, 3, 4]]
    assert await trail.flush() == 0


async def test_changes_are_stored_at_once() -> None:
    store = Store()
    await AuditTrail(store).write(event(7))
    assert [[e.at for e in b] for b in store.batches] == [[7]]


async def test_a_full_queue_drops_the_oldest_and_counts() -> None:
    trail = AuditTrail(Store(), max_pending=3)
    for n in range(5):
        trail.record(event(n))
    assert trail.pending == 3 and trail.dropped == 2


async def test_a_failed_batch_is_kept_for_the_next_flush() -> None:
    store = Store()
    trail = AuditTrail(store)
    trail.record(event(1))
    store.fail = True
    with pytest.raises(OSError):
        await trail.flush()
    trail.record(event(2))
    store.fail = False
    await trail.flush()
    assert [e.at for e in store.batches[0]] == [1, 2]


async def test_events_carry_the_request_origin_and_reach_listeners() -> None:
    seen: list[AuditEvent] = []
    trail = AuditTrail(Store())
    trail.listeners.append(seen.append)
    token = request_origin.set(Origin("203.0.113.7", "curl/8.5", "req-1234"))
    try:
        trail.record(event())
    finally:
        request_origin.reset(token)
    assert (seen[0].source_ip, seen[0].user_agent) == ("203.0.113.7", "curl/8.5")


async def test_request_events_can_be_switched_off_for_measurement() -> None:
    store = Store()
    seen: list[AuditEvent] = []
    trail = AuditTrail(store, request_events=False)
    trail.listeners.append(seen.append)
    trail.record(event())
    await trail.write(event(9))  # changes are still recorded
    assert trail.pending == 0 and seen == [event(9)]
    assert [[e.at for e in b] for b in store.batches] == [[9]]


class Lines:
    def __init__(self) -> None:
        self.writes: list[list[AuditLine]] = []

    def __call__(self, lines: list[AuditLine]) -> None:
        self.writes.append(list(lines))


async def test_request_events_are_logged_in_one_write_per_batch() -> None:
    lines = Lines()
    trail = AuditTrail(Store(), lines=lines)
    token = request_origin.set(Origin("198.51.100.4", None, "req-abcdefgh"))
    try:
        for n in range(3):
            trail.record(event(n))
    finally:
        request_origin.reset(token)
    assert lines.writes == []  # nothing on the request path
    await trail.flush()
    assert [[line.event.at for line in write] for write in lines.writes] == [[0, 1, 2]]
    first = lines.writes[0][0]
    assert first.request_id == "req-abcdefgh" and first.event.source_ip == "198.51.100.4"
    assert first.fields() == {
        "audit": True,
        "event": "token.issued",
        "at": 0,
        "outcome": "success",
        "source_ip": "198.51.100.4",
    }


async def test_a_batch_the_store_refused_is_not_logged_twice() -> None:
    store, lines = Store(), Lines()
    trail = AuditTrail(store, lines=lines)
    trail.record(event(1))
    store.fail = True
    with pytest.raises(OSError):
        await trail.flush()
    store.fail = False
    await trail.flush()
    assert [[line.event.at for line in write] for write in lines.writes] == [[1]]
    assert [e.at for e in store.batches[0]] == [1]


async def test_changes_are_logged_before_they_are_stored() -> None:
    store, lines = Store(), Lines()
    store.fail = True
    with pytest.raises(OSError):
        await AuditTrail(store, lines=lines).write(event(5))
    assert [[line.event.at for line in write] for write in lines.writes] == [[5]]
