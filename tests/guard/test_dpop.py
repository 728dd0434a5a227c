"""DPoP at the guard (RFC 9449 §7), through real HTTP on all three adapters: a bound token
passes only as ``Authorization: DPoP`` with one valid proof for this request, and every bad
proof answers 401 with a DPoP challenge naming the algorithms (SECURITY.md cases 90-99)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.guard.conftest import ADAPTERS, Keys, asgi_app, fastapi_app, flask_app
from tests.guard.dpop_forge import PUBLIC, ProofKey, bad_proofs
from tests.guard.forge import AUDIENCE, ISSUER, claims, sign
from tests.guard.servers import StubServer, asgi_server, wsgi_server
from tokensmith.guard import DpopNonces, DpopPolicy, Guard, MemoryProofCache
from tokensmith.guard.errors import DpopProofRefused, render

URL = PUBLIC + "/orders"


def dpop_guard(issuer: StubServer, **options: Any) -> Guard:
    policy = DpopPolicy(public_url=PUBLIC, **options)
    return Guard.for_issuer(
        ISSUER, audience=AUDIENCE, jwks_uri=issuer.base_url + "/jwks", dpop=policy
    )


def serve(adapter: str, guard: Guard) -> Any:
    if adapter == "flask":
        return wsgi_server(flask_app(guard))
    return asgi_server(asgi_app(guard) if adapter == "asgi" else fastapi_app(guard))


@pytest.fixture(scope="module", params=ADAPTERS)
def base(request: pytest.FixtureRequest, issuer: StubServer) -> Iterator[str]:
    with serve(request.param, dpop_guard(issuer)) as url:
        yield url


@pytest.fixture(scope="module")
def key() -> ProofKey:
    return ProofKey()


def bound_token(keys: Keys, key: ProofKey, **extra: Any) -> str:
    return sign(keys.es, claims(cnf={"jkt": key.jkt}, **extra))


def call(base: str, authorization: str, *proofs: str) -> httpx.Response:
    headers = [("authorization", authorization), *(("dpop", p) for p in proofs)]
    return httpx.get(base + "/orders", headers=headers)


def challenge(response: httpx.Response) -> str:
    return response.headers["www-authenticate"]


def test_a_bound_token_with_its_proof_passes(base: str, keys: Keys, key: ProofKey) -> None:
    token = bound_token(keys, key)
    response = call(base, f"DPoP {token}", key.proof("GET", URL, token))
    assert response.status_code == 200, response.text
    assert response.json()["sub"] == "user-1"
    # Each request needs its own proof; the token itself is reusable.
    again = call(base, f"DPoP {token}", key.proof("GET", URL, token))
    assert again.status_code == 200


@pytest.mark.parametrize(
    "case",
    [
        "wrong_htm", "wrong_htu", "wrong_path", "stale_iat", "future_iat", "string_iat",
        "alg_none", "alg_hs256", "private_jwk", "no_jwk", "wrong_typ", "missing_ath",
        "wrong_ath", "no_jti", "bad_signature", "not_a_jws", "oversized",
    ],
)  # fmt: skip
def test_every_bad_proof_is_refused(base: str, keys: Keys, key: ProofKey, case: str) -> None:
    token = bound_token(keys, key)
    proof = bad_proofs(key, ProofKey(), URL, token)[case]
    response = call(base, f"DPoP {token}", proof)
    assert response.status_code == 401, (case, response.text)
    assert response.json()["error"] == "invalid_dpop_proof"
    value = challenge(response)
    assert value.startswith('DPoP realm="tokensmith", error="invalid_dpop_proof"'), value
    assert 'algs="ES256 ' in value and 'Bearer realm="tokensmith"' in value
    assert proof[:40] not in value + response.text  # the proof is never echoed


def test_a_proof_by_another_key_than_cnf_jkt(base: str, keys: Keys, key: ProofKey) -> None:
    token = bound_token(keys, key)
    response = call(base, f"DPoP {token}", ProofKey().proof("GET", URL, token))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert challenge(response).startswith('DPoP realm="tokensmith", error="invalid_token"')


def test_the_real_loopback_url_is_not_the_public_one(base: str, keys: Keys, key: ProofKey) -> None:
    """The Host header names 127.0.0.1:port; the guard trusts only its configured public URL."""
    token = bound_token(keys, key)
    response = call(base, f"DPoP {token}", key.proof("GET", base + "/orders", token))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_dpop_proof"


def test_a_replayed_proof_is_refused(base: str, keys: Keys, key: ProofKey) -> None:
    token = bound_token(keys, key)
    proof = key.proof("GET", URL, token)
    assert call(base, f"DPoP {token}", proof).status_code == 200
    replay = call(base, f"DPoP {token}", proof)
    assert replay.status_code == 401
    assert replay.json() == {
        "error": "invalid_dpop_proof",
        "error_description": "the DPoP proof was already used",
    }


def test_a_bound_token_as_bearer_is_refused(base: str, keys: Keys, key: ProofKey) -> None:
    token = bound_token(keys, key)
    for proofs in ((), (key.proof("GET", URL, token),)):
        response = call(base, f"Bearer {token}", *proofs)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"
        value = challenge(response)
        assert value.startswith('Bearer realm="tokensmith", error="invalid_token"'), value
        assert 'DPoP realm="tokensmith", algs="ES256' in value


def test_the_dpop_scheme_without_a_proof(base: str, keys: Keys, key: ProofKey) -> None:
    response = call(base, f"DPoP {bound_token(keys, key)}")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_dpop_proof"
    assert challenge(response).startswith('DPoP realm="tokensmith", error="invalid_dpop_proof"')


def test_two_dpop_headers_are_refused(base: str, keys: Keys, key: ProofKey) -> None:
    token = bound_token(keys, key)
    proofs = key.proof("GET", URL, token), key.proof("GET", URL, token)
    response = call(base, f"DPoP {token}", *proofs)
    assert response.status_code == 401
    assert response.json()["error_description"] == "send exactly one DPoP proof header"


def test_an_unbound_token_in_the_dpop_scheme_is_refused(
    base: str, keys: Keys, key: ProofKey
) -> None:
    """RFC 9449 §7.2 leaves it open; we refuse: the scheme claims a binding there is not."""
    token = sign(keys.es, claims())
    response = call(base, f"DPoP {token}", key.proof("GET", URL, token))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert call(base, f"Bearer {token}").status_code == 200  # as Bearer it is fine


def test_a_malformed_cnf_is_never_read_as_unbound(base: str, keys: Keys) -> None:
    for cnf in ({"x5t#S256": "abc"}, {"jkt": ""}, "jkt", {"jkt": 5}):
        token = sign(keys.es, claims(cnf=cnf))
        response = call(base, f"Bearer {token}")
        assert response.status_code == 401, cnf


def test_insufficient_scope_is_challenged_in_the_dpop_scheme(
    base: str, keys: Keys, key: ProofKey
) -> None:
    token = bound_token(keys, key)
    response = httpx.get(
        base + "/admin",
        headers={
            "authorization": f"DPoP {token}",
            "dpop": key.proof("GET", PUBLIC + "/admin", token),
        },
    )
    assert response.status_code == 403
    assert challenge(response).startswith('DPoP realm="tokensmith", error="insufficient_scope"')


def test_a_missing_credential_names_both_schemes(base: str) -> None:
    response = httpx.get(base + "/orders")
    assert response.status_code == 401
    value = challenge(response)
    assert value.startswith('Bearer realm="tokensmith", DPoP realm="tokensmith", algs="ES256 ')


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_resource_nonces(adapter: str, issuer: StubServer, keys: Keys, key: ProofKey) -> None:
    nonces = DpopNonces(b"n" * 32, lifetime=60)
    with serve(adapter, dpop_guard(issuer, nonces=nonces)) as base:
        token = bound_token(keys, key)
        first = call(base, f"DPoP {token}", key.proof("GET", URL, token))
        assert first.status_code == 401
        assert first.json()["error"] == "use_dpop_nonce"
        assert challenge(first).startswith('DPoP realm="tokensmith", error="use_dpop_nonce"')
        nonce = first.headers["dpop-nonce"]
        wrong = call(base, f"DPoP {token}", key.proof("GET", URL, token, nonce="nope"))
        assert wrong.json()["error"] == "use_dpop_nonce"
        ok = call(base, f"DPoP {token}", key.proof("GET", URL, token, nonce=nonce))
        assert ok.status_code == 200, ok.text


def test_a_guard_without_dpop_refuses_bound_tokens_and_the_scheme(
    issuer: StubServer, keys: Keys, key: ProofKey
) -> None:
    guard = Guard.for_issuer(ISSUER, audience=AUDIENCE, jwks_uri=issuer.base_url + "/jwks")
    with asgi_server(asgi_app(guard)) as base:
        token = bound_token(keys, key)
        assert call(base, f"Bearer {token}").status_code == 401
        refused = call(base, f"DPoP {token}", key.proof("GET", URL, token))
        assert refused.status_code == 401
        assert challenge(refused).startswith('Bearer realm="tokensmith", error="invalid_token"')
        assert "DPoP" not in challenge(call(base, "Bearer x"))


def test_trusting_the_request_host(issuer: StubServer, keys: Keys, key: ProofKey) -> None:
    policy = DpopPolicy(trust_request_host=True)
    guard = Guard.for_issuer(
        ISSUER, audience=AUDIENCE, jwks_uri=issuer.base_url + "/jwks", dpop=policy
    )
    with asgi_server(asgi_app(guard)) as base:
        token = bound_token(keys, key)
        ok = call(base, f"DPoP {token}", key.proof("GET", base + "/orders", token))
        assert ok.status_code == 200
        assert call(base, f"DPoP {token}", key.proof("GET", URL, token)).status_code == 401


def test_bound_opaque_tokens_through_introspection(keys: Keys, key: ProofKey) -> None:
    from tokensmith.guard import Introspector

    with StubServer() as stub:
        active = {"active": True, "sub": "u", "aud": AUDIENCE, "scope": "orders:read"}
        stub.routes["/introspect"] = (
            200, {}, {**active, "token_type": "DPoP", "cnf": {"jkt": key.jkt}}
        )  # fmt: skip
        introspector = Introspector(
            stub.base_url + "/introspect", client_id="rs", client_secret="s", audiences=[AUDIENCE]
        )
        guard = Guard(introspector=introspector, dpop=DpopPolicy(public_url=PUBLIC))
        with asgi_server(asgi_app(guard)) as base:
            ok = call(base, "DPoP opaque-1", key.proof("GET", URL, "opaque-1"))
            assert ok.status_code == 200, ok.text
            assert call(base, "Bearer opaque-1").status_code == 401
            stub.routes["/introspect"] = (200, {}, {**active, "token_type": "DPoP"})
            no_cnf = call(base, "DPoP opaque-2", key.proof("GET", URL, "opaque-2"))
            assert no_cnf.status_code == 401


def test_the_replay_cache_is_bounded_and_fails_closed() -> None:
    cache = MemoryProofCache(max_entries=2)
    now = int(time.time())
    assert cache.first_use("a", now + 10, now) and cache.first_use("b", now + 10, now)
    assert not cache.first_use("a", now + 10, now)
    from tokensmith.guard.dpop_replay import ProofCacheFull

    with pytest.raises(ProofCacheFull):
        cache.first_use("c", now + 10, now)
    assert cache.first_use("c", now + 30, now + 11)  # a and b expired: room again
    assert len(cache) == 1


def test_policy_refuses_bad_configuration() -> None:
    for options in (
        {},
        {"public_url": "ftp://api.test"},
        {"public_url": "https://api.test/?q=1"},
        {"public_url": PUBLIC, "algorithms": ["HS256", "none"]},
        {"public_url": PUBLIC, "max_age": 0},
    ):
        with pytest.raises(ValueError):
            DpopPolicy(**options)  # type: ignore[arg-type]


def test_nonces_roll_over_one_window() -> None:
    nonces = DpopNonces(b"k" * 16, lifetime=60)
    nonce = nonces.current(1_000_000)
    assert nonces.accepts(nonce, 1_000_000) and nonces.accepts(nonce, 1_000_000 + 60)
    assert not nonces.accepts(nonce, 1_000_000 + 180)
    assert not DpopNonces(b"j" * 16, lifetime=60).accepts(nonce, 1_000_000)
    assert not nonces.accepts("é" * 10, 1_000_000) and not nonces.accepts(None, 1_000_000)
    assert "k" not in repr(nonces)


def test_render_of_a_dpop_refusal() -> None:
    error = DpopProofRefused("htm does not match the request method")
    error.dpop_algs = ("ES256", "EdDSA")
    status, headers, _ = render(error, "api")
    assert status == 401
    assert dict(headers)["www-authenticate"] == (
        'DPoP realm="api", error="invalid_dpop_proof", '
        'error_description="htm does not match the request method", algs="ES256 EdDSA", '
        'Bearer realm="api"'
    )
