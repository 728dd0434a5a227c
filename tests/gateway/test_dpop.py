"""DPoP at the gateway (RFC 9449 §7), over real HTTP: a bound outside token passes only with a
proof naming the gateway's public URL for the route, the proof never reaches the upstream, and
every bad proof answers 401 with a DPoP challenge (SECURITY.md cases 90-99)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import Running, gateway_config, gateway_server
from tests.guard.conftest import Keys
from tests.guard.dpop_forge import PUBLIC, ProofKey, bad_proofs
from tests.guard.forge import claims, sign
from tests.guard.servers import StubServer
from tokensmith.errors import ConfigError
from tokensmith.gateway import build_gateway
from tokensmith.gateway.config import parse_config

URL = PUBLIC + "/orders/42"


@pytest.fixture(scope="module")
def dpop_gateway(
    stub_issuer: StubServer, upstream: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("gateway-dpop")
    config = parse_config(gateway_config(stub_issuer, upstream, tmp, public_url=PUBLIC), tmp)
    gateway = build_gateway(config)
    with gateway_server(gateway) as base:
        yield Running(base, gateway, stub_issuer)


@pytest.fixture(scope="module")
def key() -> ProofKey:
    return ProofKey()


def call(
    running: Running, authorization: str, *proofs: str, path: str = "/orders/42?x=1"
) -> httpx.Response:
    headers = [("authorization", authorization), *(("dpop", p) for p in proofs)]
    return httpx.get(running.base_url + path, headers=headers, timeout=10)


def bound(keys: Keys, key: ProofKey) -> str:
    return sign(keys.es, claims(cnf={"jkt": key.jkt}))


def test_a_bound_token_with_its_proof_passes_and_the_proof_stays_here(
    dpop_gateway: Running, keys: Keys, key: ProofKey
) -> None:
    token = bound(keys, key)
    proof = key.proof("GET", URL, token)
    response = call(dpop_gateway, f"DPoP {token}", proof)
    assert response.status_code == 200, response.text
    seen = response.json()
    names = [name for name, _ in seen["headers"]]
    assert "dpop" not in names
    assert token not in str(seen) and proof not in str(seen)
    assert dict(seen["headers"])["authorization"].startswith("Bearer ")  # the phantom token


@pytest.mark.parametrize(
    "case",
    [
        "wrong_htm", "wrong_htu", "wrong_path", "stale_iat", "future_iat", "alg_none",
        "alg_hs256", "private_jwk", "missing_ath", "wrong_ath", "bad_signature", "wrong_typ",
    ],
)  # fmt: skip
def test_every_bad_proof_is_refused(
    dpop_gateway: Running, keys: Keys, key: ProofKey, case: str
) -> None:
    token = bound(keys, key)
    response = call(dpop_gateway, f"DPoP {token}", bad_proofs(key, ProofKey(), URL, token)[case])
    assert response.status_code == 401, (case, response.text)
    assert response.json()["error"] == "invalid_dpop_proof"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('DPoP realm="gateway", error="invalid_dpop_proof"'), challenge
    assert 'algs="ES256 ' in challenge


def test_refusals_of_the_binding(dpop_gateway: Running, keys: Keys, key: ProofKey) -> None:
    token = bound(keys, key)
    other = call(dpop_gateway, f"DPoP {token}", ProofKey().proof("GET", URL, token))
    assert (other.status_code, other.json()["error"]) == (401, "invalid_token")
    as_bearer = call(dpop_gateway, f"Bearer {token}")
    assert (as_bearer.status_code, as_bearer.json()["error"]) == (401, "invalid_token")
    assert 'DPoP realm="gateway", algs="ES256' in as_bearer.headers["www-authenticate"]
    missing = call(dpop_gateway, f"DPoP {token}")
    assert (missing.status_code, missing.json()["error"]) == (401, "invalid_dpop_proof")
    two = call(
        dpop_gateway, f"DPoP {token}", key.proof("GET", URL, token), key.proof("GET", URL, token)
    )
    assert (two.status_code, two.json()["error"]) == (401, "invalid_dpop_proof")


def test_a_replayed_proof_is_refused(dpop_gateway: Running, keys: Keys, key: ProofKey) -> None:
    token = bound(keys, key)
    proof = key.proof("GET", URL, token)
    assert call(dpop_gateway, f"DPoP {token}", proof).status_code == 200
    replay = call(dpop_gateway, f"DPoP {token}", proof)
    assert (replay.status_code, replay.json()["error"]) == (401, "invalid_dpop_proof")


def test_the_proof_names_the_public_url_not_the_upstream_or_loopback(
    dpop_gateway: Running, keys: Keys, key: ProofKey
) -> None:
    token = bound(keys, key)
    for url in (dpop_gateway.base_url + "/orders/42", "http://gateway.internal/orders/42"):
        response = call(dpop_gateway, f"DPoP {token}", key.proof("GET", url, token))
        assert response.status_code == 401, url


def test_without_public_url_dpop_is_refused(running: Running, keys: Keys, key: ProofKey) -> None:
    """The shared gateway fixture names no public_url: bound tokens are refused either way."""
    token = bound(keys, key)
    assert call(running, f"Bearer {token}").status_code == 401
    refused = call(running, f"DPoP {token}", key.proof("GET", URL, token))
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith('Bearer realm="gateway"')


def test_nonces(stub_issuer: StubServer, upstream: str, tmp_path: Path, keys: Keys) -> None:
    document = gateway_config(stub_issuer, upstream, tmp_path, public_url=PUBLIC, dpop_nonces=True)
    gateway = build_gateway(parse_config(document, tmp_path))
    key = ProofKey()
    with gateway_server(gateway) as base:
        running = Running(base, gateway, stub_issuer)
        token = bound(keys, key)
        first = call(running, f"DPoP {token}", key.proof("GET", URL, token))
        assert (first.status_code, first.json()["error"]) == (401, "use_dpop_nonce")
        nonce = first.headers["dpop-nonce"]
        ok = call(running, f"DPoP {token}", key.proof("GET", URL, token, nonce=nonce))
        assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    "public_url", ["ftp://api.test", "https://api.test/prefix", "https://api.test?x=1", "nope"]
)
def test_bad_public_url_names_the_key(tmp_path: Path, public_url: str) -> None:
    stub = type("Unreached", (), {"base_url": "http://127.0.0.1:1"})()
    document = gateway_config(stub, "http://127.0.0.1:1", tmp_path, public_url=public_url)
    with pytest.raises(ConfigError, match="public_url"):
        parse_config(document, tmp_path)
