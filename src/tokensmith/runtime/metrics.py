"""The process's Prometheus metrics, defined once; ``web/metrics.py`` serves them.

Labelled children for the few known label values are resolved here once: ``labels()`` validates
and takes a lock on every call, and these are counted on the request path.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "ANOMALIES",
    "AUDIT_EVENTS",
    "DATABASE_READY",
    "HTTP_LATENCY",
    "HTTP_REQUESTS",
    "LIMITS_SHARED",
    "LOCKOUTS",
    "LOCKOUTS_BY_KIND",
    "RATE_LIMITED",
    "RATE_LIMITED_BY_KIND",
    "SIGNING_KEYS",
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

_KINDS = ("account", "client", "address", "user_code", "user_code_address")
LOCKOUTS_BY_KIND = {kind: LOCKOUTS.labels(kind) for kind in _KINDS}
RATE_LIMITED_BY_KIND = {kind: RATE_LIMITED.labels(kind) for kind in (*_KINDS, "key")}
