"""The pipeline endpoints served past Starlette's router (web/lean.py) keep the envelope's
guarantees, and every other method or path still goes through Starlette."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support import add_machine_client
from tokensmith.errors import InvalidScope
from tokensmith.runtime.services import Services
from tokensmith.settings import Settings
from tokensmith.web.app import create_app
from tokensmith.web.lean import LeanApp

pytestmark = pytest.mark.anyio

_SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


@pytest.fixture
async def client(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(settings, services), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        yield http


def served(route: str, status: str) -> float:
    labels = {"route": route, "method": "POST", "status": status}
    return REGISTRY.get_sample_value("tokensmith_http_requests_total", labels) or 0.0


async def test_a_token_request_has_the_envelope_headers_and_its_route_metric(
    client: httpx.AsyncClient, services: Services
) -> None:
    client_id, secret = await add_machine_client(services)
    before = served("/token", "200")
    response = await client.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"
    for name, value in _SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert len(response.headers["x-request-id"]) >= 8
    assert served("/token", "200") == before + 1


async def test_a_refusal_is_rendered_by_the_protocol_and_counted(
    client: httpx.AsyncClient,
) -> None:
    before = served("/introspect", "401")
    response = await client.post("/introspect", data={"token": "x"}, auth=("nobody", "wrong"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["x-frame-options"] == "DENY"
    assert served("/introspect", "401") == before + 1


async def test_credentials_in_the_query_are_refused_before_the_endpoint(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/token?client_secret=abc", data={"grant_type": "x"})
    assert response.status_code == 400
    assert "never accepted in a URL" in response.json()["error_description"]


async def test_other_methods_and_paths_still_go_through_starlette(
    client: httpx.AsyncClient,
) -> None:
    wrong_method = await client.get("/token")
    assert wrong_method.status_code == 405
    assert "POST" in wrong_method.headers["allow"]
    assert wrong_method.json()["error"] == "invalid_request"
    preflight = await client.options(
        "/token",
        headers={"origin": "https://spa.example", "access-control-request-method": "POST"},
    )
    assert preflight.status_code != 405
    assert (await client.post("/token/")).status_code != 200


async def test_an_endpoint_that_fails_gives_a_json_500_and_a_log_line(
    settings: Settings, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("secret internal detail")

    async def refuse(request: Request) -> Response:
        raise InvalidScope("no such scope")

    app = create_app(settings, services)
    lean = app.app  # type: ignore[attr-defined]
    assert isinstance(lean, LeanApp)
    lean.serve_lean(
        {"/boom": (Route("/boom", boom), boom), "/refuse": (Route("/r", refuse), refuse)}
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    caplog.set_level(logging.ERROR, logger="tokensmith.http")
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        failed = await http.post("/boom")
        refused = await http.post("/refuse")
    assert failed.status_code == 500
    assert failed.json()["error"] == "server_error"
    assert "secret internal detail" not in failed.text
    assert failed.headers["x-content-type-options"] == "nosniff"
    assert [r.getMessage() for r in caplog.records] == ["request failed"]
    assert refused.status_code == 400
    assert refused.json() == {"error": "invalid_scope", "error_description": "no such scope"}


async def test_headers_a_route_sets_are_kept_unless_they_are_the_envelopes(
    settings: Settings, services: Services
) -> None:
    async def own(request: Request) -> Response:
        headers = {"cache-control": "max-age=60", "x-frame-options": "SAMEORIGIN", "x-own": "1"}
        return Response("ok", headers=headers)

    app = create_app(settings, services)
    app.app.serve_lean({"/own": (Route("/own", own), own)})  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.post("/own", headers={"x-request-id": "abcdefgh-1234"})
    assert response.headers.get_list("cache-control") == ["max-age=60"]
    assert response.headers.get_list("x-frame-options") == ["DENY"]
    assert response.headers.get_list("x-request-id") == ["abcdefgh-1234"]
    assert response.headers["x-own"] == "1"
    assert "strict-transport-security" not in response.headers
