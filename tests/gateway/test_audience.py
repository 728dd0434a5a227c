"""SECURITY.md case 60 at the gateway: each route holds every credential (JWT, introspected
opaque token, API key) to its own audience, so a token meant for one service is not forwarded
to another, over real HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from tests.gateway.conftest import API_KEY_ANSWER, Running, gateway_config
from tests.guard.conftest import Keys
from tests.guard.forge import AUDIENCE, DROP, ISSUER, b64, claims, sign
from tests.guard.servers import Answer, StubServer, asgi_server
from tokensmith.apikeys.format import generate_api_key
from tokensmith.errors import ConfigError
from tokensmith.gateway import build_gateway
from tokensmith.gateway.config import parse_config

BILLING = "https://billing.test"


def introspection(body: bytes) -> Answer:
    """An opaque token ``tsat_<base64url JSON>`` is active with that JSON as its ``aud``;
    ``tsat_none`` has none."""
    token = parse_qs(body.decode())["token"][0].removeprefix("tsat_")
    answer: dict[str, Any] = {"active": True, "sub": "u", "scope": "orders:read", "iss": ISSUER}
    if token != "none":
        answer["aud"] = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return 200, {}, answer


KEY_ANSWER: Answer = (200, {}, API_KEY_ANSWER)  # today's verify answer: no audience


@pytest.fixture(scope="module")
def audited(
    stub_issuer: StubServer, upstream: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("audience")
    stub_issuer.routes["/introspect"] = introspection
    stub_issuer.routes["/api-keys/verify"] = KEY_ANSWER
    document = gateway_config(stub_issuer, upstream, tmp, resource=AUDIENCE)
    document["authorization_server"]["introspection_cache_seconds"] = 0
    document["authorization_server"]["api_key_cache_seconds"] = 0
    document["routes"].append(
        {
            "path": "/billing",
            "upstream": upstream,
            "audience": "billing-svc",
            "token_audiences": [BILLING],
        }
    )
    gateway = build_gateway(parse_config(document, tmp))
    with asgi_server(gateway) as base:
        yield Running(base, gateway, stub_issuer)


def call(running: Running, path: str, **headers: str) -> httpx.Response:
    return httpx.get(running.base_url + path, headers=headers, timeout=10)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def opaque(aud: object) -> str:
    return "tsat_none" if aud is DROP else "tsat_" + b64(json.dumps(aud))


def assert_refused(response: httpx.Response, has: str, expects: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "invalid_token"
    assert has in body["error_description"] and repr(expects) in body["error_description"]
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="gateway", error="invalid_token"')
    assert "headers" not in body  # our refusal: the echo upstream never saw the request


def test_jwts_only_reach_the_route_of_their_audience(audited: Running, keys: Keys) -> None:
    orders = sign(keys.es, claims())
    assert call(audited, "/orders", **bearer(orders)).status_code == 200
    assert_refused(call(audited, "/billing", **bearer(orders)), repr(AUDIENCE), BILLING)
    billing = sign(keys.es, claims(aud=BILLING))
    assert call(audited, "/billing", **bearer(billing)).status_code == 200
    assert_refused(call(audited, "/orders", **bearer(billing)), repr(BILLING), AUDIENCE)
    both = sign(keys.es, claims(aud=[AUDIENCE, BILLING]))
    assert call(audited, "/orders", **bearer(both)).status_code == 200
    assert call(audited, "/billing", **bearer(both)).status_code == 200
    other = sign(keys.es, claims(aud="https://other.test"))
    assert_refused(call(audited, "/orders", **bearer(other)), "'https://other.test'", AUDIENCE)


@pytest.mark.parametrize(
    ("aud", "orders", "billing"),
    [
        (AUDIENCE, 200, 401),
        (BILLING, 401, 200),
        ([AUDIENCE, BILLING], 200, 200),
        ("https://other.test", 401, 401),
        (DROP, 401, 401),
        ([], 401, 401),
    ],
    ids=["orders", "billing", "both", "other", "missing", "empty"],
)
def test_introspected_tokens_only_reach_the_route_of_their_audience(
    audited: Running, aud: object, orders: int, billing: int
) -> None:
    token = opaque(aud)
    for path, status in (("/orders", orders), ("/billing", billing)):
        response = call(audited, path, **bearer(token))
        assert response.status_code == status, (path, response.text)
        if status == 401:
            has = "names no audience" if aud in (DROP, []) else "audience is"
            assert_refused(response, has, AUDIENCE if path == "/orders" else BILLING)
        else:
            assert token not in response.text  # the phantom token went upstream, not this one


def test_api_keys_without_an_audience_pass_and_bound_keys_are_held_to_theirs(
    audited: Running,
) -> None:
    key = generate_api_key("live").text
    assert call(audited, "/orders", **{"x-api-key": key}).status_code == 200
    assert call(audited, "/billing", **{"x-api-key": key}).status_code == 200
    audited.issuer.routes["/api-keys/verify"] = (200, {}, {**API_KEY_ANSWER, "aud": BILLING})
    try:
        assert call(audited, "/billing", **{"x-api-key": key}).status_code == 200
        assert_refused(call(audited, "/orders", **{"x-api-key": key}), repr(BILLING), AUDIENCE)
    finally:
        audited.issuer.routes["/api-keys/verify"] = KEY_ANSWER


def test_a_gateway_without_any_audience_does_not_start(
    stub_issuer: StubServer, tmp_path: Path
) -> None:
    document = gateway_config(stub_issuer, "http://127.0.0.1:1", tmp_path)
    document["authorization_server"].pop("jwt_audiences")
    with pytest.raises(ConfigError, match=r"routes\[0\]\.token_audiences is required"):
        parse_config(document, tmp_path)
    document["gateway"]["resource"] = "not a url"
    with pytest.raises(ConfigError, match=r"gateway\.resource"):
        parse_config(document, tmp_path)
    document["gateway"]["resource"] = AUDIENCE
    document["routes"][0]["token_audiences"] = []
    with pytest.raises(ConfigError, match=r"routes\[0\]\.token_audiences must be"):
        parse_config(document, tmp_path)
    document["routes"][0]["token_audiences"] = [BILLING]
    config = parse_config(document, tmp_path)
    assert config.route_for("/orders/1").token_audiences == (BILLING,)  # type: ignore[union-attr]
    assert config.route_for("/svc/1").token_audiences == (AUDIENCE,)  # type: ignore[union-attr]
