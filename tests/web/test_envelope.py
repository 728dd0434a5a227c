"""In-process checks of what no real route triggers on purpose: last-resort errors, readiness."""

from __future__ import annotations

import logging

import httpx
import pytest
import sqlalchemy as sa
from starlette.types import Receive, Scope, Send

from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings
from tokensmith.web.app import create_app
from tokensmith.web.envelope import Envelope

pytestmark = pytest.mark.anyio


def failing(exc: Exception):  # type: ignore[no-untyped-def]
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise exc

    return app


async def call(exc: Exception) -> httpx.Response:
    transport = httpx.ASGITransport(app=Envelope(failing(exc), https=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/anything")


async def test_unexpected_error_is_a_json_500_without_traceback() -> None:
    response = await call(RuntimeError("internal detail /etc/passwd"))
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert "internal detail" not in response.text
    assert "Traceback" not in response.text
    assert response.headers["x-request-id"]


async def test_database_down_is_a_503_with_retry_after() -> None:
    error = sa.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))
    response = await call(error)
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["retry-after"] == "5"
    assert "SELECT" not in response.text


async def test_connection_refused_is_a_503() -> None:
    response = await call(ConnectionRefusedError("postgres is gone"))
    assert response.status_code == 503
    assert "postgres" not in response.text


@pytest.mark.backends("sqlite", "postgresql")
async def test_readiness_requires_an_active_signing_key(settings: Settings) -> None:
    services = await open_services(settings, apply_migrations=True, create_keys=False)
    try:
        transport = httpx.ASGITransport(app=create_app(settings, services))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/readyz")
            assert response.status_code == 503
            assert response.json()["checks"] == {"database": "ok", "signing_key": "missing"}
            await services.keyring.ensure()
            assert (await client.get("/readyz")).status_code == 200
    finally:
        await services.close()


@pytest.mark.backends("sqlite", "postgresql")
async def test_a_route_that_raises_gives_json_not_plain_text(settings: Settings) -> None:
    from starlette.requests import Request
    from starlette.routing import Route

    async def boom(request: Request) -> None:
        raise RuntimeError("secret internal detail")

    services = await open_services(settings, apply_migrations=True)
    try:
        app = create_app(settings, services)
        app.app.router.routes.append(Route("/boom", boom))  # type: ignore[attr-defined]
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/boom")
        assert response.status_code == 500
        assert response.json()["error"] == "server_error"
        assert "secret internal detail" not in response.text
        assert response.headers["x-content-type-options"] == "nosniff"
    finally:
        await services.close()


async def test_a_secret_in_the_path_is_not_written_to_the_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The access line and the failure line name the path, never a secret a client put in it."""
    caplog.set_level(logging.INFO)
    key = "tsk_live_" + "A" * 12 + "_" + "B" * 49
    jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl"
    transport = httpx.ASGITransport(app=Envelope(failing(RuntimeError("x")), https=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for path in (f"/admin/api-keys/{key}", f"/userinfo/{jwt}", "/x/tsrt_" + "C" * 43):
            assert (await client.get(path)).status_code == 500
    paths = [str(getattr(r, "path", "")) for r in caplog.records if hasattr(r, "path")]
    assert len(paths) == 6, paths  # a failure line and an access line each
    for secret in ("B" * 49, "eyJzdWIiOiJhbGljZSJ9", "C" * 43):
        assert not any(secret in p for p in paths), paths
    assert "/admin/api-keys/tsk_[redacted]" in paths
