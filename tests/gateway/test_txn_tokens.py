"""The transaction tokens the gateway forwards, over real HTTP: mint mode's claims per request,
the caller's Txn-Id only where a route trusts it, and exchange mode's request, cache and
fail-closed answers against a token endpoint the test controls (SECURITY.md 115-116). Exchange
mode against a real Tokensmith is in tests/examples/test_stack.py."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt as pyjwt
import pytest

from tests.gateway.conftest import Running, gateway_config
from tests.guard.conftest import Keys
from tests.guard.forge import claims, sign
from tests.guard.servers import Answer, StubServer, asgi_server
from tests.support import refused_port
from tokensmith.apikeys.format import generate_api_key
from tokensmith.errors import ConfigError
from tokensmith.gateway import build_gateway
from tokensmith.gateway.config import parse_config

TXN_URN = "urn:ietf:params:oauth:token-type:txn_token"


def forwarded_token(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    headers = dict(response.json()["headers"])
    assert "txn-id" not in headers and "txn-token" not in headers
    return str(headers["authorization"].removeprefix("Bearer "))


def unverified(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = pyjwt.decode(token, options={"verify_signature": False})
    return claims


@pytest.fixture(scope="module")
def minting(
    stub_issuer: StubServer, upstream: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("minting")
    document = gateway_config(stub_issuer, upstream, tmp)
    document["transaction_tokens"] = {"trust_domain": "https://trust.test", "workload": "edge"}
    document["routes"].append(
        {"path": "/chained", "upstream": upstream, "trust_incoming_txn": True}
    )
    gateway = build_gateway(parse_config(document, tmp))
    with asgi_server(gateway) as base:
        yield Running(base, gateway, stub_issuer)


def get(running: Running, path: str, token: str, **headers: str) -> httpx.Response:
    headers["authorization"] = f"Bearer {token}"
    return httpx.get(running.base_url + path, headers=headers, timeout=10)


def test_each_request_is_its_own_transaction(minting: Running, keys: Keys) -> None:
    outside = sign(keys.es, claims(sub="alice", scope="orders:read orders:write"))
    first = forwarded_token(get(minting, "/orders/1", outside, **{"txn-id": "caller-txn-1"}))
    second = forwarded_token(get(minting, "/orders/1", outside))
    one, two = unverified(first), unverified(second)
    assert one["txn"] != two["txn"] and one["txn"] != "caller-txn-1"  # not trusted here
    assert pyjwt.get_unverified_header(first)["typ"] == "txntoken+jwt"
    assert one["aud"] == "orders-svc"  # the route names its own trust domain
    assert one["iss"] == "http://gateway.internal"
    assert one["sub_id"] == {"format": "opaque", "id": "alice"} and one["sub"] == "alice"
    assert one["azd"] == {"client_id": "client-1", "scope": "orders:read orders:write"}
    assert one["rctx"] == {"req_ip": "127.0.0.1", "authn": "oauth_access_token", "req_wl": "edge"}
    assert one["purp"] == "orders:read"
    assert 0 < one["exp"] - one["iat"] <= 60


def test_a_trusting_route_reuses_the_callers_txn(minting: Running, keys: Keys) -> None:
    outside = sign(keys.es, claims())
    token = forwarded_token(get(minting, "/chained/x", outside, **{"txn-id": "caller-txn-1"}))
    minted = unverified(token)
    assert minted["txn"] == "caller-txn-1"
    assert minted["aud"] == "https://trust.test"  # the default trust domain
    assert minted["purp"] == "/chained"  # a route without scopes: its path
    fresh = unverified(forwarded_token(get(minting, "/chained/x", outside)))
    assert fresh["txn"] != "caller-txn-1"


@pytest.mark.parametrize("txn", ["short", "x" * 65, "semi;colon", "new\tline", "ünï-cödé-1"])
def test_a_malformed_txn_id_is_refused(minting: Running, keys: Keys, txn: str) -> None:
    raw = [("authorization", f"Bearer {sign(keys.es, claims())}"), ("txn-id", txn)]
    response = httpx.get(
        minting.base_url + "/chained/x",
        headers=[(k.encode(), v.encode("utf-8")) for k, v in raw],
        timeout=10,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert "Txn-Id" in response.json()["error_description"]


def test_api_keys_get_txn_tokens(minting: Running) -> None:
    response = httpx.get(
        minting.base_url + "/orders", headers={"x-api-key": generate_api_key("live").text}
    )
    minted = unverified(forwarded_token(response))
    assert minted["rctx"]["authn"] == "api_key"
    assert minted["azd"]["client_id"] == "api-key:k1"


# Exchange mode, against a token endpoint the test controls.


def txn_answer(token: str = "ey.txn.token", **changes: Any) -> Answer:
    body = {
        "access_token": token,
        "issued_token_type": TXN_URN,
        "token_type": "N_A",
        "expires_in": 60,
        **changes,
    }
    return 200, {}, {k: v for k, v in body.items() if v is not None}


@pytest.fixture
def exchanging(stub_issuer: StubServer, upstream: str, tmp_path: Path) -> Iterator[Running]:
    stub_issuer.routes["/token"] = txn_answer()
    stub_issuer.hits.pop("/token", None)
    stub_issuer.requests.clear()
    document = gateway_config(stub_issuer, upstream, tmp_path)
    document["authorization_server"]["token_endpoint"] = stub_issuer.base_url + "/token"
    document["transaction_tokens"] = {"mode": "exchange", "workload": "edge"}
    del document["gateway"]["signing_key_file"]  # Tokensmith signs: the gateway needs no key
    document["routes"].append(
        {"path": "/chained", "upstream": upstream, "trust_incoming_txn": True}
    )
    gateway = build_gateway(parse_config(document, tmp_path))
    with asgi_server(gateway) as base:
        yield Running(base, gateway, stub_issuer)
    stub_issuer.routes.pop("/token", None)


def b64json(value: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


def test_exchange_mode_asks_the_server_and_forwards_its_token(
    exchanging: Running, keys: Keys
) -> None:
    outside = sign(keys.es, claims(sub="alice"))
    assert forwarded_token(get(exchanging, "/orders", outside)) == "ey.txn.token"
    path, headers, body = exchanging.issuer.requests[-1]
    assert path == "/token"
    assert (
        headers["authorization"] == "Basic " + base64.b64encode(b"gateway:gateway-secret").decode()
    )
    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    assert form.pop("request_context") and form.pop("request_details")
    assert form == {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "requested_token_type": TXN_URN,
        "subject_token": outside,
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "audience": "orders-svc",
    }
    sent = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    assert b64json(sent["request_context"]) == {
        "req_ip": "127.0.0.1",
        "authn": "oauth_access_token",
        "req_wl": "edge",
    }
    assert b64json(sent["request_details"]) == {"client_id": "client-1", "scope": "orders:read"}
    # The exchange mode has no key of its own to publish.
    assert httpx.get(exchanging.base_url + "/.well-known/jwks.json").json() == {"keys": []}


def test_one_exchange_serves_a_burst_of_calls(exchanging: Running, keys: Keys) -> None:
    outside = sign(keys.es, claims())
    for _ in range(3):
        forwarded_token(get(exchanging, "/orders", outside))
    assert exchanging.issuer.hits["/token"] == 1
    forwarded_token(get(exchanging, "/orders", sign(keys.es, claims(sub="bob"))))
    assert exchanging.issuer.hits["/token"] == 2  # another credential, another exchange


def test_an_api_key_is_exchanged_with_its_token_type(exchanging: Running) -> None:
    key = generate_api_key("live").text
    forwarded_token(httpx.get(exchanging.base_url + "/orders", headers={"x-api-key": key}))
    form = parse_qs(exchanging.issuer.requests[-1][2].decode())
    assert form["subject_token"] == [key]
    assert form["subject_token_type"] == ["urn:tokensmith:params:oauth:token-type:api-key"]


def test_a_trusted_txn_id_goes_to_the_server(exchanging: Running, keys: Keys) -> None:
    forwarded_token(
        get(exchanging, "/chained", sign(keys.es, claims()), **{"txn-id": "txn-abc-123"})
    )
    form = parse_qs(exchanging.issuer.requests[-1][2].decode())
    assert b64json(form["request_details"][0])["txn"] == "txn-abc-123"


@pytest.mark.parametrize(
    "answer",
    [
        (500, {}, {"error": "server_error"}),
        (503, {}, "maintenance"),
        (401, {}, {"error": "invalid_client"}),
        (400, {}, {"error": "invalid_target"}),
        txn_answer(issued_token_type="urn:ietf:params:oauth:token-type:access_token"),
        txn_answer(token=None),
        txn_answer(token=""),
        txn_answer(token="x" * 9000),
        (200, {}, ["not", "an", "object"]),
    ],
    ids=[
        "500",
        "503-not-json-object",
        "invalid_client",
        "invalid_target",
        "another-token-type",
        "no-token",
        "empty-token",
        "huge-token",
        "json-list",
    ],
)
def test_no_txn_token_means_503(exchanging: Running, keys: Keys, answer: Answer) -> None:
    exchanging.issuer.routes["/token"] = answer
    response = get(exchanging, "/orders", sign(keys.es, claims()))
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["retry-after"] == "1"


def test_a_refused_subject_token_is_401(exchanging: Running, keys: Keys) -> None:
    exchanging.issuer.routes["/token"] = (400, {}, {"error": "invalid_grant"})
    response = get(exchanging, "/orders", sign(keys.es, claims()))
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_an_unreachable_server_is_503(
    stub_issuer: StubServer, upstream: str, tmp_path: Path, keys: Keys
) -> None:
    document = gateway_config(stub_issuer, upstream, tmp_path)
    document["authorization_server"]["token_endpoint"] = f"http://127.0.0.1:{refused_port()}/token"
    document["transaction_tokens"] = {"mode": "exchange"}
    with asgi_server(build_gateway(parse_config(document, tmp_path))) as base:
        response = httpx.get(
            base + "/orders", headers={"authorization": f"Bearer {sign(keys.es, claims())}"}
        )
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "temporarily_unavailable"


def test_mint_mode_needs_its_key_file(
    stub_issuer: StubServer, upstream: str, tmp_path: Path
) -> None:
    document = gateway_config(stub_issuer, upstream, tmp_path)
    del document["gateway"]["signing_key_file"]
    with pytest.raises(ConfigError, match="signing_key_file"):
        parse_config(document, tmp_path)
