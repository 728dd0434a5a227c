"""A gateway in front of an echo upstream, trusting a stub issuer (JWKS, introspection, API-key
verification) the tests control. Everything is real HTTP on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.guard.conftest import Keys, keys
from tests.guard.forge import AUDIENCE, ISSUER
from tests.guard.servers import StubServer, asgi_server
from tests.support import METRICS_TOKEN, refused_port
from tokensmith.gateway import Gateway, build_gateway
from tokensmith.gateway.config import parse_config
from tokensmith.web.connection import proxy_limits
from tokensmith.web.server import server_options

__all__ = ["keys"]

API_KEY_ANSWER = {
    "active": True,
    "key_id": "k1",
    "name": "ci",
    "owner": "team-a",
    "scope": "orders:read",
    "expires_at": None,
    "rate_limit": None,
}


async def echo(scope: Any, receive: Any, send: Any) -> None:
    """Answers with what it received, plus a header an upstream would rather keep inside."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    seen = {
        "path": scope["path"],
        "query": scope["query_string"].decode(),
        "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
        "body_bytes": len(body),
    }
    payload = json.dumps(seen).encode()
    headers = [(b"content-type", b"application/json"), (b"x-powered-by", b"secret-framework 1.2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


@dataclass
class Running:
    base_url: str
    gateway: Gateway
    issuer: StubServer


def gateway_config(issuer: Any, upstream: str, tmp: Path, **limits: Any) -> dict[str, Any]:
    return {
        "gateway": {
            "issuer": "http://gateway.internal",
            "signing_key_file": str(tmp / "gateway-key.pem"),
            **limits,
        },
        "authorization_server": {
            "issuer": ISSUER,
            "client_id": "gateway",
            "client_secret": "gateway-secret",
            "jwt_audiences": [AUDIENCE],
            "jwks_uri": issuer.base_url + "/jwks",
            "introspection_endpoint": issuer.base_url + "/introspect",
            "api_key_endpoint": issuer.base_url + "/api-keys/verify",
            "timeout": 2,
        },
        "routes": [
            {
                "path": "/orders",
                "upstream": upstream,
                "audience": "orders-svc",
                "scopes": ["orders:read"],
            },
            {
                "path": "/orders/admin",
                "upstream": upstream,
                "audience": "orders-svc",
                "scopes": ["orders:admin"],
            },
            {"path": "/svc", "upstream": upstream + "/base", "audience": "svc", "strip_path": True},
            {"path": "/down", "upstream": f"http://127.0.0.1:{refused_port()}", "audience": "down"},
        ],
    }


@pytest.fixture(scope="module")
def stub_issuer(keys: Keys) -> Iterator[StubServer]:
    with StubServer() as stub:
        stub.routes["/jwks"] = (
            200,
            {},
            {"keys": [k.public_jwk() for k in (keys.es, keys.rs, keys.ed)]},
        )
        stub.routes["/attacker-jwks"] = (200, {}, {"keys": [keys.rogue.public_jwk()]})
        stub.routes["/introspect"] = (200, {}, {"active": False})
        stub.routes["/api-keys/verify"] = (200, {}, API_KEY_ANSWER)
        yield stub


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with asgi_server(echo) as base:
        yield base


@pytest.fixture(scope="module")
def running(
    stub_issuer: StubServer, upstream: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("gateway")
    document = gateway_config(
        stub_issuer, upstream, tmp, max_body_bytes=1000, metrics_token=METRICS_TOKEN
    )
    config = parse_config(document, tmp)
    gateway = build_gateway(config)
    with gateway_server(gateway) as base:
        yield Running(base, gateway, stub_issuer)


@contextmanager
def gateway_server(gateway: Gateway) -> Iterator[str]:
    """The gateway on loopback with the connection limits `tokensmith gateway` gives it."""
    with asgi_server(gateway, **server_options(proxy_limits(gateway.config))) as base:
        yield base
