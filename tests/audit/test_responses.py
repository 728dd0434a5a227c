"""Which alerts get an automatic response, and the bounded queue in front of them."""

from __future__ import annotations

from typing import Any, cast

import pytest

from tokensmith.audit.anomalies import Alert
from tokensmith.audit.responses import AnomalyResponder, ResponsePolicy

pytestmark = pytest.mark.anyio


class Recorder:
    """Stands in for the limits, stores and trail; records what the responder asks of them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def hold(self, name: str, seconds: int) -> None:
        self.calls.append(("hold", (name, seconds)))

    async def revoke_for_subject(self, subject: str, now: int, reason: str) -> int:
        self.calls.append(("revoke", (subject, reason)))
        return 2

    async def end_for_user(self, user_id: str, now: int) -> int:
        self.calls.append(("end", user_id))
        return 1

    async def write(self, event: Any) -> None:
        self.calls.append(("audit", event.detail))

    def now(self) -> int:
        return 1000


def responder(policy: ResponsePolicy, parts: Recorder, max_queue: int = 1000) -> AnomalyResponder:
    any_part = cast(Any, parts)
    return AnomalyResponder(
        policy,
        limits=any_part,
        refresh=any_part,
        sessions=any_part,
        trail=any_part,
        clock=any_part,
        max_queue=max_queue,
    )


ALL_ON = ResponsePolicy(spike="throttle", new_network="reauthenticate", throttle_seconds=60)


async def test_only_chosen_rules_and_fitting_identities_get_a_response() -> None:
    parts = Recorder()
    r = responder(ALL_ON, parts)
    for alert in (
        Alert("volume_spike", "client:c1", "s"),
        Alert("volume_spike", "key:k1", "s"),
        Alert("volume_spike", "user:u1", "s"),  # a user is not held: alert only
        Alert("new_network", "user:u2", "s"),
        Alert("new_network", "key:k2", "s"),  # a key has no one to sign in again
        Alert("failure_burst", "address:198.51.100.1", "s"),  # the lockouts answer that
    ):
        r.handle(alert)
    await r.drain()
    done = [call for call in parts.calls if call[0] != "audit"]
    assert done == [
        ("hold", ("client:c1", 60)),
        ("hold", ("key:k1", 60)),
        ("revoke", ("u2", "anomaly:new_network")),
        ("end", "u2"),
    ]
    audited = [detail for kind, detail in parts.calls if kind == "audit"]
    assert audited[-1] == {
        "rule": "new_network",
        "identity": "user:u2",
        "action": "reauthenticate",
        "families": 2,
        "sessions": 1,
    }


async def test_by_default_every_rule_only_alerts() -> None:
    parts = Recorder()
    r = responder(ResponsePolicy(), parts)
    r.handle(Alert("volume_spike", "client:c1", "s"))
    r.handle(Alert("new_network", "user:u1", "s"))
    await r.drain()
    assert parts.calls == []


async def test_a_flood_of_alerts_keeps_the_queue_bounded() -> None:
    parts = Recorder()
    r = responder(ALL_ON, parts, max_queue=3)
    for n in range(10):
        r.handle(Alert("volume_spike", f"client:c{n}", "s"))
    assert r.dropped == 7
    await r.drain()
    assert [args[0] for kind, args in parts.calls if kind == "hold"] == [
        "client:c7",
        "client:c8",
        "client:c9",
    ]
