"""The gateway's Prometheus counters, in a registry of its own (one per gateway instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest

from tokensmith.core.labels import LabelledChildren

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

        self._requests = LabelledChildren(self.requests)

    def allowed(self) -> None:
        self._requests("allowed", "ok").inc()

    def refused(self, reason: str) -> None:
        self._requests("refused", reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
