"""Prometheus metrics for HTTP and signing keys; multi-process aware when workers > 1."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.challenges import render_challenge
from tokensmith.core.secrets import bearer_matches
from tokensmith.errors import NotFound
from tokensmith.web.responses import error_response, json_response
from tokensmith.web.state import services_of

__all__ = [
    "ANOMALIES",
    "AUDIT_EVENTS",
    "HTTP_LATENCY",
    "HTTP_REQUESTS",
    "LIMITS_SHARED",
    "LOCKOUTS",
    "RATE_LIMITED",
    "SIGNING_KEYS",
    "metrics_endpoint",
]

HTTP_REQUESTS = Counter(
    "tokensmith_http_requests_total",
    "HTTP requests by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "tokensmith_http_request_duration_seconds",
    "Time from request to the end of the response, by route template.",
    ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
SIGNING_KEYS = Gauge(
    "tokensmith_signing_keys",
    "Signing keys published in the JWKS, by state.",
    ["state"],
    multiprocess_mode="livemax",
)
DATABASE_READY = Gauge(
    "tokensmith_database_ready",
    "1 when the last readiness check reached the database, else 0.",
    multiprocess_mode="livemax",
)

AUDIT_EVENTS = Counter(
    "tokensmith_events_total",
    "Security events by name and outcome: tokens issued and refused, logins, API-key refusals…",
    ["event", "outcome", "reason"],
)
ANOMALIES = Counter(
    "tokensmith_anomalies_total",
    "Alerts raised by the anomaly rules, by rule.",
    ["rule"],
)
RATE_LIMITED = Counter(
    "tokensmith_rate_limited_total",
    "Requests refused with 429, by what was limited: account, client, address or key.",
    ["kind"],
)
LOCKOUTS = Counter(
    "tokensmith_lockouts_total",
    "Locks set after repeated failures, by what was locked: account, client or address.",
    ["kind"],
)
LIMITS_SHARED = Gauge(
    "tokensmith_rate_limits_shared",
    "1 while rate limits and lockouts are shared through Redis; 0 when held per process.",
    multiprocess_mode="livemin",
)


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text for the bearer of TOKENSMITH_METRICS_TOKEN only (SECURITY.md case 67).

    Unset, /metrics is not served at all (404, as for any unknown path); anyone else gets 401.
    With several workers it aggregates them all (prometheus multiprocess mode), whichever answers.
    """
    token = services_of(request).settings.metrics_token
    if token is None:
        return error_response(NotFound("no such endpoint"))
    if not bearer_matches(request.headers.get("authorization"), token.get_secret_value()):
        refusal = {
            "error": "invalid_token",
            "error_description": "/metrics needs the metrics token",
        }
        challenge = render_challenge("Bearer", realm="metrics", error="invalid_token")
        return json_response(refusal, 401, {"www-authenticate": challenge})
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})
