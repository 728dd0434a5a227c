"""Liveness (the process answers) and readiness (the database answers, keys are loaded)."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response

from tokensmith.persistence.database import DATABASE_ERRORS
from tokensmith.web.metrics import DATABASE_READY
from tokensmith.web.responses import json_response
from tokensmith.web.state import services_of

__all__ = ["healthz", "readyz"]

log = logging.getLogger(__name__)


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    services = services_of(request)
    checks = {"database": "ok", "signing_key": "ok"}
    try:
        async with asyncio.timeout(services.settings.readiness_timeout):
            async with services.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
    except DATABASE_ERRORS as exc:
        log.warning("readiness: database unreachable", extra={"error": type(exc).__name__})
        checks["database"] = "unreachable"
    if not services.keyring.has_active:
        checks["signing_key"] = "missing"
    ready = all(value == "ok" for value in checks.values())
    DATABASE_READY.set(1 if checks["database"] == "ok" else 0)
    body = {"status": "ready" if ready else "unavailable", "checks": checks}
    return json_response(body, 200 if ready else 503, None if ready else {"retry-after": "5"})
