"""What an ASGI server other than ours may hand the app: never a 500.

``tokensmith serve`` runs behind httptools, which refuses a request target that is not ASCII
before the app sees it; under another server (or a proxy speaking HTTP/2 to one) the raw bytes
of the query reach the app. Each endpoint must answer them as it answers any other query.
"""

from __future__ import annotations

from typing import Any

import pytest

from tokensmith.runtime.services import Services
from tokensmith.settings import Settings
from tokensmith.web.app import create_app

pytestmark = pytest.mark.anyio

FORM = (b"content-type", b"application/x-www-form-urlencoded")


async def call(
    app: Any, method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]]
) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode() + b"?" + query,
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    messages: list[dict[str, Any]] = []
    body = b"grant_type=client_credentials&token=x"

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    headers.append((b"content-length", str(len(body)).encode()))
    await app(scope, receive, send)
    return int(messages[0]["status"])


@pytest.mark.parametrize("query", [b"\xff", b"a=\xc3", b"x=%ff\xfe"])
async def test_a_query_that_is_not_utf8_gets_no_server_error(
    settings: Settings, services: Services, query: bytes
) -> None:
    app = create_app(settings, services)
    auth = (b"authorization", b"Basic Y2xpZW50OnNlY3JldA==")
    for method, path, headers in (
        ("POST", "/token", [FORM, auth]),
        ("POST", "/introspect", [FORM, auth]),
        ("POST", "/revoke", [FORM, auth]),
        ("POST", "/api-keys/verify", [FORM, auth, (b"x-api-key", b"tsk_x")]),
        ("POST", "/api-keys/verify", [(b"x-api-key", b"tsk_x")]),
        ("OPTIONS", "/token", [(b"origin", b"https://app.example.com")]),
        ("OPTIONS", "/userinfo", [(b"origin", b"https://app.example.com")]),
    ):
        status = await call(app, method, path, query, list(headers))
        assert status < 500, (method, path, query, status)
