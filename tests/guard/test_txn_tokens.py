"""guard/txn_tokens.py over real HTTP: a service that accepts only transaction tokens of its
trust domain, and an access-token service beside it that must refuse them (SECURITY.md 113-114).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.guard.conftest import Keys, asgi_app, make_guard
from tests.guard.forge import DROP, ISSUER, b64, claims, sign
from tests.guard.servers import StubServer, asgi_server
from tokensmith.apikeys.format import generate_api_key
from tokensmith.guard import Guard, Principal
from tokensmith.guard.asgi import GuardMiddleware, principal_of

DOMAIN = "https://trust.example"


def txn(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": DOMAIN,
        "iat": now,
        "exp": now + 60,
        "txn": "97053963-771d-49cc-a4e3-20aad399c312",
        "sub_id": {"format": "opaque", "id": "user-1"},
        "sub": "user-1",
        "azd": {"client_id": "client-1", "scope": "orders:read"},
        "rctx": {"req_ip": "203.0.113.7", "authn": "oauth_access_token", "req_wl": "gw"},
        "purp": "orders:read",
        "scope": "orders:read",
    }
    for name, value in overrides.items():
        if value is DROP:
            base.pop(name, None)
        else:
            base[name] = value
    return base


def signed(keys: Keys, body: dict[str, Any], **header: Any) -> str:
    return sign(keys.es, body, typ=header.pop("typ", "txntoken+jwt"), **header)


def _described(principal: Principal) -> dict[str, Any]:
    return {
        "sub": principal.subject,
        "kind": principal.kind,
        "txn": principal.txn,
        "sub_id": principal.sub_id,
        "purp": principal.purp,
        "azd": principal.azd,
        "rctx": principal.rctx,
    }


async def _echo(scope: Any, receive: Any, send: Any) -> None:
    body = json.dumps(_described(principal_of(scope))).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def txn_service(issuer: StubServer) -> Iterator[str]:
    guard = Guard.for_transaction_tokens(
        ISSUER, trust_domain=DOMAIN, jwks_uri=issuer.base_url + "/jwks", realm="orders"
    )
    with asgi_server(GuardMiddleware(_echo, guard, scopes=["orders:read"])) as base:
        yield base


@pytest.fixture(scope="module")
def access_service(issuer: StubServer) -> Iterator[str]:
    with asgi_server(asgi_app(make_guard(issuer))) as base:
        yield base


def call(base: str, token: str) -> httpx.Response:
    return httpx.get(base + "/orders", headers={"authorization": f"Bearer {token}"}, timeout=10)


def test_a_txn_token_passes_with_its_claims_on_the_principal(txn_service: str, keys: Keys) -> None:
    response = call(txn_service, signed(keys, txn()))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "sub": "user-1",
        "kind": "txn_token",
        "txn": "97053963-771d-49cc-a4e3-20aad399c312",
        "sub_id": {"format": "opaque", "id": "user-1"},
        "purp": "orders:read",
        "azd": {"client_id": "client-1", "scope": "orders:read"},
        "rctx": {"req_ip": "203.0.113.7", "authn": "oauth_access_token", "req_wl": "gw"},
    }


def test_sub_id_alone_names_the_subject(txn_service: str, keys: Keys) -> None:
    response = call(txn_service, signed(keys, txn(sub=DROP)))
    assert response.status_code == 200, response.text
    assert response.json()["sub"] == "user-1"


def _refused(response: httpx.Response, says: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_token"
    assert says in response.json()["error_description"]
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge


def test_an_access_token_is_no_txn_token(txn_service: str, keys: Keys) -> None:
    access = sign(keys.es, claims(aud=DOMAIN))  # typ at+jwt, every RFC 9068 claim
    _refused(call(txn_service, access), "typ must be txntoken+jwt")


def test_a_txn_token_is_no_access_token(access_service: str, keys: Keys) -> None:
    # Every claim an access token needs as well, so only the typ can refuse it.
    body = {**claims(), **txn(aud=claims()["aud"])}
    _refused(call(access_service, signed(keys, body)), "typ must be at+jwt")


def test_an_api_key_is_no_txn_token(txn_service: str) -> None:
    response = httpx.get(
        txn_service + "/orders", headers={"x-api-key": generate_api_key("live").text}
    )
    _refused(response, "API keys are not accepted")


@pytest.mark.parametrize(
    ("name", "body", "says"),
    [
        ("wrong audience", lambda: txn(aud="https://other.example"), "audience"),
        ("audience a prefix", lambda: txn(aud=DOMAIN[:-1]), "audience"),
        ("another issuer", lambda: txn(iss=ISSUER + ".evil"), "another issuer"),
        ("expired", lambda: txn(iat=int(time.time()) - 120, exp=int(time.time()) - 60), "expired"),
        ("lives too long", lambda: txn(exp=int(time.time()) + 301), "longer than 300 seconds"),
        ("no txn", lambda: txn(txn=DROP), "'txn'"),
        ("empty txn", lambda: txn(txn=""), "'txn'"),
        ("txn not a string", lambda: txn(txn=7), "'txn'"),
        ("no sub_id", lambda: txn(sub_id=DROP), "'sub_id'"),
        ("sub_id without format", lambda: txn(sub_id={"id": "user-1"}), "subject identifier"),
        ("no subject at all", lambda: txn(sub=DROP, sub_id={"format": "email"}), "no subject"),
        ("no iat", lambda: txn(iat=DROP), "'iat'"),
        ("float iat", lambda: txn(iat=time.time()), "whole number"),
        ("no exp", lambda: txn(exp=DROP), "'exp'"),
        ("azd not an object", lambda: txn(azd="client-1"), "'azd'"),
        ("rctx not an object", lambda: txn(rctx=["1.2.3.4"]), "'rctx'"),
        ("purp not a string", lambda: txn(purp=["a"]), "purp"),
    ],
)
def test_txn_token_refusals(
    txn_service: str, keys: Keys, name: str, body: Callable[[], dict[str, Any]], says: str
) -> None:
    # Built when the test runs: a token made at collection time could expire before then.
    _refused(call(txn_service, signed(keys, body())), says)


def test_a_bad_signature_is_refused(txn_service: str, keys: Keys) -> None:
    head, _, sig = signed(keys, txn()).split(".")
    tampered = f"{head}.{b64(json.dumps(txn(sub='admin')))}.{sig}"
    _refused(call(txn_service, tampered), "signature")
    forged = sign(keys.rogue, txn(), typ="txntoken+jwt", kid=keys.es.kid)  # our kid, not our key
    _refused(call(txn_service, forged), "signature")


def test_an_unsigned_txn_token_is_refused(txn_service: str, keys: Keys) -> None:
    head = b64(json.dumps({"alg": "none", "typ": "txntoken+jwt"}))
    _refused(call(txn_service, f"{head}.{b64(json.dumps(txn()))}."), "")


def test_a_scope_the_route_needs_is_still_checked(txn_service: str, keys: Keys) -> None:
    response = call(txn_service, signed(keys, txn(scope="orders:write")))
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
