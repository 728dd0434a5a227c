"""The gateway's Prometheus counters, in a registry of its own (one per gateway instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest

__all__ = ["GatewayMetrics"]


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tokensmith_gateway_requests_total",
            "Requests by outcome (allowed, refused) and reason.",
            ["outcome", "reason"],
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "tokensmith_gateway_upstream_errors_total",
            "Requests allowed in but failed at the upstream, by reason.",
            ["reason"],
            registry=self.registry,
        )

    def allowed(self) -> None:
        self.requests.labels("allowed", "ok").inc()

    def refused(self, reason: str) -> None:
        self.requests.labels("refused", reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
