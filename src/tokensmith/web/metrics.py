"""/metrics: the Prometheus text of runtime/metrics.py; multi-process aware when workers > 1."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.challenges import render_challenge
from tokensmith.core.secrets import bearer_matches
from tokensmith.errors import NotFound
from tokensmith.web.responses import error_response, json_response
from tokensmith.web.state import services_of

__all__ = ["metrics_endpoint"]


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
