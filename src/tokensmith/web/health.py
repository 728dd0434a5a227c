"""Liveness (the process answers) and readiness (the database answers, keys are loaded)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.runtime.metrics import DATABASE_READY
from tokensmith.runtime.readiness import check_readiness
from tokensmith.web.responses import json_response
from tokensmith.web.state import services_of

__all__ = ["healthz", "readyz"]


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    readiness = await check_readiness(services_of(request))
    checks = {
        "database": "ok" if readiness.database else "unreachable",
        "signing_key": "ok" if readiness.signing_key else "missing",
    }
    ready = readiness.ready
    DATABASE_READY.set(1 if readiness.database else 0)
    body = {"status": "ready" if ready else "unavailable", "checks": checks}
    return json_response(body, 200 if ready else 503, None if ready else {"retry-after": "5"})
