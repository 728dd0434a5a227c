"""The anomaly rules on a controlled clock: each fires, each stays quiet when it should."""

from __future__ import annotations

import pytest

from tokensmith.audit.anomalies import Alert, AnomalyDetector, AnomalyPolicy
from tokensmith.audit.events import AuditEvent
from tokensmith.core.clock import FrozenClock


def detector(**policy: float) -> tuple[AnomalyDetector, list[Alert], FrozenClock]:
    ticks = FrozenClock(start=60 * 100)  # on a minute boundary
    found = AnomalyDetector(AnomalyPolicy(**policy), monotonic=ticks.monotonic)  # type: ignore[arg-type]
    alerts: list[Alert] = []
    found.listeners.append(alerts.append)
    return found, alerts, ticks


def issued(
    client: str = "c1",
    ip: str = "192.0.2.10",
    agent: str = "worker/1.0",
    subject: str | None = None,
) -> AuditEvent:
    return AuditEvent(
        at=0,
        event="token.issued",
        outcome="success",
        client_id=client,
        subject=subject or client,
        source_ip=ip,
        user_agent=agent,
    )


def test_refresh_reuse_alerts_at_once() -> None:
    rules, alerts, _ = detector()
    rules.observe(AuditEvent(0, "token.reuse_detected", "failure", client_id="web", subject="u1"))
    assert [(a.rule, a.identity) for a in alerts] == [("refresh_reuse", "client:web")]
    assert alerts[0].detail["subject"] == "u1"


def test_a_burst_of_failures_alerts_once_per_cooldown() -> None:
    rules, alerts, ticks = detector(burst_failures=5, burst_window=60, cooldown=300)
    refused = AuditEvent(
        0,
        "token.refused",
        "denied",
        client_id="c1",
        source_ip="203.0.113.5",
        detail={"error": "invalid_client"},
    )
    for _ in range(4):
        rules.observe(refused)
        ticks.advance(1)
    assert alerts == []
    rules.observe(refused)
    assert sorted(a.identity for a in alerts) == ["address:203.0.113.5", "client:c1"]
    for _ in range(10):
        rules.observe(refused)
    assert len(alerts) == 2  # the cooldown holds further alerts back
    ticks.advance(301)
    for _ in range(5):
        rules.observe(refused)
    assert len(alerts) == 4


def test_failures_spread_over_time_are_no_burst() -> None:
    rules, alerts, ticks = detector(burst_failures=3, burst_window=60)
    for _ in range(10):
        rules.observe(
            AuditEvent(
                0, "login.failure", "denied", detail={"username": "alice"}, source_ip="198.51.100.1"
            )
        )
        ticks.advance(31)
    assert alerts == []


def test_other_refusals_are_not_authentication_failures() -> None:
    rules, alerts, _ = detector(burst_failures=2)
    for _ in range(5):
        rules.observe(
            AuditEvent(
                0, "token.refused", "failure", client_id="c1", detail={"error": "invalid_grant"}
            )
        )
        rules.observe(
            AuditEvent(
                0, "api_key.refused", "denied", source_ip="10.0.0.1", detail={"reason": "expired"}
            )
        )
    assert alerts == []


def test_a_new_network_or_agent_after_a_history() -> None:
    rules, alerts, _ = detector(history_before_new_network=3)
    rules.observe(issued(ip="192.0.2.10"))  # the first uses build the history: no alert
    rules.observe(issued(ip="198.51.100.7"))
    rules.observe(issued(ip="192.0.2.99"))  # same /24 as the first
    assert alerts == []
    rules.observe(issued(ip="192.0.2.200"))
    assert alerts == []
    rules.observe(issued(ip="203.0.113.4"))
    assert [(a.rule, a.identity) for a in alerts] == [("new_network", "client:c1")]
    assert "203.0.113.0/24" in alerts[0].summary
    rules.observe(issued(client="c2", ip="192.0.2.1"))
    rules.observe(issued(client="c2", ip="192.0.2.1"))
    rules.observe(issued(client="c2", ip="192.0.2.1"))
    rules.observe(issued(client="c2", ip="192.0.2.1", agent="curl/8.5.0"))
    assert alerts[-1].identity == "client:c2" and "user_agent curl" in alerts[-1].summary


def test_ipv6_networks_are_48s_and_users_are_watched_too() -> None:
    rules, alerts, _ = detector(history_before_new_network=1)
    rules.observe(issued(client="web", subject="u1", ip="2001:db8:1:2::1"))
    rules.observe(issued(client="web", subject="u1", ip="2001:db8:1:ffff::9"))
    assert alerts == []
    rules.observe(issued(client="web", subject="u1", ip="2001:db8:2::1"))
    assert {a.identity for a in alerts} == {"client:web", "user:u1"}


def test_a_volume_spike_against_the_recent_baseline() -> None:
    rules, alerts, ticks = detector(spike_factor=10, spike_minimum=100, spike_history=3)
    for _minute in range(3):
        for _ in range(10):
            rules.observe(issued())
        ticks.advance(60)
    assert alerts == []
    for _ in range(101):
        rules.observe(issued())
    assert [(a.rule, a.identity) for a in alerts] == [("volume_spike", "client:c1")]
    assert alerts[0].detail == {"count": 101, "baseline": 10.0}


def test_a_steady_heavy_user_is_no_spike() -> None:
    rules, alerts, ticks = detector(spike_factor=10, spike_minimum=100, spike_history=3)
    for _minute in range(6):
        for _ in range(500):
            rules.observe(issued())
        ticks.advance(60)
    assert alerts == []


def test_a_revoked_key_presented_again() -> None:
    rules, alerts, _ = detector()
    rules.observe(
        AuditEvent(
            0,
            "api_key.refused",
            "denied",
            fingerprint="KEYID0000001",
            source_ip="203.0.113.9",
            detail={"reason": "revoked"},
        )
    )
    assert [(a.rule, a.identity) for a in alerts] == [
        ("revoked_credential_used", "key:KEYID0000001")
    ]


@pytest.mark.parametrize("event", ["code.replayed", "device.replayed"])
def test_a_spent_code_presented_again(event: str) -> None:
    rules, alerts, _ = detector()
    rules.observe(AuditEvent(0, event, "failure", client_id="tv", source_ip="203.0.113.9"))
    assert [(a.rule, a.identity) for a in alerts] == [("revoked_credential_used", "client:tv")]


def test_a_flood_of_identities_keeps_memory_bounded() -> None:
    rules, _, _ = detector(max_identities=1000)
    for i in range(30_000):
        rules.observe(issued(client=f"c{i}", ip=f"10.{i % 250}.{i // 250 % 250}.1"))
        rules.observe(
            AuditEvent(
                0,
                "login.failure",
                "denied",
                detail={"username": f"u{i}"},
                source_ip=f"10.0.{i % 250}.{i // 250 % 250}",
            )
        )
    assert len(rules._usage) <= 1000 and len(rules._failures) <= 1000 and len(rules._volume) <= 1000
