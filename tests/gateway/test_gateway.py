"""The gateway over real HTTP: phantom tokens, header hygiene, refusals, limits, metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import Running, gateway_config
from tests.guard.cases import CASES, EXPIRED, Build
from tests.guard.conftest import Keys
from tests.guard.forge import claims, sign
from tests.guard.servers import StubServer, asgi_server
from tests.support import METRICS_AUTH, refused_port
from tokensmith.apikeys.format import generate_api_key
from tokensmith.errors import ConfigError
from tokensmith.gateway import build_gateway
from tokensmith.gateway.config import parse_config
from tokensmith.guard import Credential, Guard


def get(running: Running, path: str, token: str | None = None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return httpx.get(running.base_url + path, headers=headers, timeout=10)


def test_phantom_token_replaces_the_outside_credential(running: Running, keys: Keys) -> None:
    outside = sign(keys.es, claims(sub="alice", scope="orders:read orders:write"))
    response = get(
        running,
        "/orders/42?x=1",
        outside,
        **{
            "x-internal-user": "admin",
            "x-tokensmith-principal": "admin",
            "x-forwarded-for": "1.2.3.4",
            "x-request-id": "caller-chosen-id-1",
            "connection": "keep-alive, x-hop",
            "x-hop": "secret",
            "x-kept": "yes",
        },
    )
    assert response.status_code == 200, response.text
    seen = response.json()
    headers = dict(seen["headers"])
    assert seen["path"] == "/orders/42" and seen["query"] == "x=1"
    assert outside not in str(seen)  # case 51: the outside token never reaches the upstream
    for stripped in ("x-internal-user", "x-tokensmith-principal", "x-hop"):
        assert stripped not in headers
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-kept"] == "yes"
    assert headers["x-request-id"] == response.headers["x-request-id"] == "caller-chosen-id-1"
    assert "x-powered-by" not in response.headers
    internal = headers["authorization"].removeprefix("Bearer ")
    upstream_guard = Guard.for_transaction_tokens(
        "http://gateway.internal",
        trust_domain="orders-svc",
        jwks_uri=running.base_url + "/.well-known/jwks.json",
    )
    principal = asyncio.run(upstream_guard.authenticate(Credential("bearer", internal)))
    assert principal.subject == "alice" and principal.kind == "txn_token"
    assert principal.scopes == {"orders:read", "orders:write"}
    assert (
        principal.expires_at is not None
        and principal.expires_at - int(principal.claims["iat"]) <= 60
    )


def test_api_keys_are_exchanged_too(running: Running) -> None:
    key = generate_api_key("live").text
    response = get(running, "/orders", **{"x-api-key": key})
    assert response.status_code == 200, response.text
    headers = dict(response.json()["headers"])
    assert "x-api-key" not in headers
    assert key not in str(response.json())
    assert headers["authorization"].startswith("Bearer ey")


def test_strip_path(running: Running, keys: Keys) -> None:
    response = get(running, "/svc/items", sign(keys.es, claims()))
    assert response.json()["path"] == "/base/items"


@pytest.mark.parametrize(("name", "build"), CASES, ids=[name for name, _ in CASES])
def test_hostile_tokens_never_pass(running: Running, keys: Keys, name: str, build: Build) -> None:
    hits = dict(running.issuer.hits)
    response = get(running, "/orders", build(keys, running.issuer.base_url))
    assert response.status_code == 401, (name, response.text)
    assert response.json()["error"] == "invalid_token"
    assert ("expired" in response.json()["error_description"]) == (name == EXPIRED)
    assert running.issuer.hits.get("/attacker-jwks") == hits.get("/attacker-jwks")


def test_unknown_kid_flood_refetches_once(running: Running, keys: Keys) -> None:
    get(running, "/orders", sign(keys.es, claims()))
    jwks = running.gateway.guard.jwks
    assert jwks is not None
    before = jwks.fetches
    for i in range(20):
        assert (
            get(running, "/orders", sign(keys.rogue, claims(), kid=f"nope-{i}")).status_code == 401
        )
    assert jwks.fetches - before <= 1


def test_refusals(running: Running, keys: Keys) -> None:
    token = sign(keys.es, claims())
    assert get(running, "/orders").status_code == 401
    scope = get(running, "/orders/admin/x", token)
    assert scope.status_code == 403 and scope.json()["scope"] == "orders:admin"
    assert get(running, "/elsewhere", token).status_code == 404
    assert get(running, "/orders/../orders/admin", token).status_code in (400, 403, 404)
    assert get(running, "/orders/%2e%2e/admin", token).status_code == 400
    query = httpx.get(f"{running.base_url}/orders?access_token={token}")
    assert query.status_code == 400
    opaque = get(running, "/orders", "tsat_" + "a" * 43)  # introspection says inactive
    assert opaque.status_code == 401


def test_body_limits(running: Running, keys: Keys) -> None:
    headers = {"authorization": f"Bearer {sign(keys.es, claims())}"}
    small = httpx.post(running.base_url + "/orders", headers=headers, content=b"x" * 1000)
    assert small.status_code == 200 and small.json()["body_bytes"] == 1000
    large = httpx.post(running.base_url + "/orders", headers=headers, content=b"x" * 1001)
    assert large.status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b"y" * 400

    chunked = httpx.post(running.base_url + "/orders", headers=headers, content=chunks())
    assert chunked.status_code == 413


def test_upstream_down_is_502_with_our_own_body(running: Running, keys: Keys) -> None:
    response = get(running, "/down/x", sign(keys.es, claims()))
    assert response.status_code == 502
    assert response.json() == {
        "error": "bad_gateway",
        "error_description": "the upstream service is unavailable",
    }
    assert set(response.headers) <= {
        "content-type",
        "content-length",
        "cache-control",
        "x-request-id",
        "date",
        "server",
    }


def test_metrics_count_allowed_and_refused(running: Running, keys: Keys) -> None:
    get(running, "/orders", sign(keys.es, claims()))
    get(running, "/orders", sign(keys.es, claims(exp=1000)))
    text = httpx.get(running.base_url + "/metrics", headers=METRICS_AUTH).text
    assert 'tokensmith_gateway_requests_total{outcome="allowed",reason="ok"}' in text
    assert 'tokensmith_gateway_requests_total{outcome="refused",reason="token_expired"}' in text
    assert 'tokensmith_gateway_requests_total{outcome="refused",reason="invalid_token"}' in text


def test_introspection_down_is_503(stub_issuer: StubServer, upstream: str, tmp_path: Path) -> None:
    document = gateway_config(stub_issuer, upstream, tmp_path)
    document["authorization_server"]["introspection_endpoint"] = (
        f"http://127.0.0.1:{refused_port()}/x"
    )
    gateway = build_gateway(parse_config(document, tmp_path))
    with asgi_server(gateway) as base:
        response = httpx.get(base + "/orders", headers={"authorization": "Bearer tsat_abc"})
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"


def test_rate_limits(stub_issuer: StubServer, upstream: str, tmp_path: Path, keys: Keys) -> None:
    document = gateway_config(
        stub_issuer, upstream, tmp_path, client_rate_per_minute=2, key_rate_per_minute=1
    )
    gateway = build_gateway(parse_config(document, tmp_path))
    token = {"authorization": f"Bearer {sign(keys.es, claims())}"}
    with asgi_server(gateway) as base:
        statuses = [httpx.get(base + "/orders", headers=token).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        limited = httpx.get(base + "/orders", headers=token)
        assert int(limited.headers["retry-after"]) >= 1
        key = {"x-api-key": generate_api_key("live").text}
        assert [httpx.get(base + "/orders", headers=key).status_code for _ in range(2)] == [
            200,
            429,
        ]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d["routes"][0].update(audience=7), "route.audience"),
        (lambda d: d.update(transaction_tokens={"mode": "both"}), "transaction_tokens.mode"),
        (lambda d: d.update(transaction_tokens={"typo": 1}), "transaction_tokens.typo"),
        (
            lambda d: d.update(transaction_tokens={"trust_domain": "a b"}),
            "transaction_tokens.trust_domain",
        ),
        (
            lambda d: d.update(transaction_tokens={"exchange_cache_seconds": 61}),
            "transaction_tokens.exchange_cache_seconds",
        ),
        (lambda d: d["routes"][0].update(trust_incoming_txn="yes"), "trust_incoming_txn"),
        (lambda d: d["gateway"].update(internal_token_ttl=301), "gateway.internal_token_ttl"),
        (lambda d: d["routes"][0].update(upstream="ftp://x"), "routes[0].upstream"),
        (lambda d: d["routes"][0].update(path="/metrics"), "routes[0].path"),
        (lambda d: d["gateway"].update(max_body_bytes="big"), "gateway.max_body_bytes"),
        (lambda d: d["gateway"].update(typo=1), "gateway.typo"),
        (
            lambda d: d["authorization_server"].update(client_secret_env="NOPE_UNSET"),
            "client_secret",
        ),
    ],
)
def test_bad_config_names_the_key(
    tmp_path: Path, change: Callable[[dict[str, Any]], object], named: str
) -> None:
    stub = type("Unreached", (), {"base_url": "http://127.0.0.1:1"})()
    document = gateway_config(stub, "http://127.0.0.1:1", tmp_path)
    change(document)
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse_config(document, tmp_path)


def test_stalled_body_is_cut_off(
    stub_issuer: StubServer, upstream: str, tmp_path: Path, keys: Keys
) -> None:
    import socket

    document = gateway_config(stub_issuer, upstream, tmp_path, client_timeout=0.2)
    gateway = build_gateway(parse_config(document, tmp_path))
    token = sign(keys.es, claims())
    with asgi_server(gateway) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            head = (
                f"POST /orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                "Content-Length: 100\r\n\r\nonly-part"
            )
            sock.sendall(head.encode())
            answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 408")
    assert "too slowly" in answer  # our JSON, not an upstream error


def test_malformed_api_key_costs_no_request(running: Running) -> None:
    before = running.issuer.hits.get("/api-keys/verify", 0)
    response = get(running, "/orders", **{"x-api-key": "tsk_live_abc"})
    assert response.status_code == 401
    assert running.issuer.hits.get("/api-keys/verify", 0) == before


def test_unknown_kid_while_the_jwks_is_down_is_503(
    stub_issuer: StubServer, upstream: str, tmp_path: Path, keys: Keys
) -> None:
    with StubServer() as jwks:
        jwks.routes["/jwks"] = (200, {}, {"keys": [keys.es.public_jwk()]})
        document = gateway_config(stub_issuer, upstream, tmp_path)
        document["authorization_server"]["jwks_uri"] = jwks.base_url + "/jwks"
        gateway = build_gateway(parse_config(document, tmp_path))
        with asgi_server(gateway) as base:
            known = {"authorization": f"Bearer {sign(keys.es, claims())}"}
            assert httpx.get(base + "/orders", headers=known).status_code == 200
            jwks.routes["/jwks"] = (502, {}, {})
            rotated = {"authorization": f"Bearer {sign(keys.rogue, claims())}"}
            down = httpx.get(base + "/orders", headers=rotated)
            assert down.status_code == 503, down.text
            assert down.json()["error"] == "temporarily_unavailable"
            assert down.headers["retry-after"] == "1"
            assert "headers" not in down.json()  # refused here, never forwarded
            assert httpx.get(base + "/orders", headers=known).status_code == 200
