"""Hostile DPoP input at the authorization server, through a running server: every value a
proof carries that is not what it claims to be ends in the protocol's own error, never a 500."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import ECKey

from tests.oauth.conftest import Registered
from tests.oauth.test_dpop_server import _code, _exchange, machine_token, proof, refused
from tests.support import ServerThread
from tokensmith.jose.dpop import generate_proof_key, public_jwk
from tokensmith.settings import Settings


def raw_proof(key: dict[str, Any], payload: str) -> str:
    """A proof signed by ``key`` over exactly ``payload`` (JSON text we write by hand)."""
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(key)}
    return jws.serialize_compact(header, payload, ECKey.import_key(key))


def claims_text(server: ServerThread, path: str, method: str, **raw: str) -> str:
    """JSON for a good proof's claims, with ``raw`` members spliced in as written."""
    members = {
        "jti": '"j-' + str(time.time_ns()) + '"',
        "htm": f'"{method}"',
        "htu": f'"{server.base_url}{path}"',
        "iat": str(int(time.time())),
        **raw,
    }
    return "{" + ",".join(f'"{name}":{value}' for name, value in members.items()) + "}"


LONE_SURROGATE = '"\\ud800"'


def test_a_jti_that_is_no_unicode_text_is_refused_at_token(
    server: ServerThread, http: httpx.Client, machine: Registered
) -> None:
    key = generate_proof_key()
    bad = raw_proof(key, claims_text(server, "/token", "POST", jti=LONE_SURROGATE))
    refused(machine_token(http, machine, DPoP=bad))


class TestNonces:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"dpop_nonce": True})

    def test_a_nonce_that_is_no_unicode_text_is_refused(
        self, server: ServerThread, http: httpx.Client, machine: Registered
    ) -> None:
        key = generate_proof_key()
        bad = raw_proof(key, claims_text(server, "/token", "POST", nonce=LONE_SURROGATE))
        response = machine_token(http, machine, DPoP=bad)
        assert response.status_code == 400, response.text


@pytest.mark.usefixtures("alice")
def test_an_ath_that_is_no_unicode_text_is_refused_at_userinfo(
    server: ServerThread, http: httpx.Client, native_app: Registered
) -> None:
    key = generate_proof_key()
    code, verifier = _code(server, native_app)
    token = _exchange(http, native_app, code, verifier, proof(key, server)).json()["access_token"]
    bad = raw_proof(key, claims_text(server, "/userinfo", "GET", ath=LONE_SURROGATE))
    answer = http.get("/userinfo", headers={"Authorization": f"DPoP {token}", "DPoP": bad})
    assert answer.status_code == 401, answer.text
    assert 'error="invalid_dpop_proof"' in answer.headers["www-authenticate"]


@pytest.mark.parametrize(
    "value",
    [
        "\xe9.\xe9.\xe9".encode("latin-1"),
        "",
        "a..b",
        "a.b.c",
        "eyJ9.eyJ9.AA",
        "....",
    ],
)
def test_malformed_dpop_headers_are_refused_at_token(
    http: httpx.Client, machine: Registered, value: str
) -> None:
    response = machine_token(http, machine, DPoP=value)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_dpop_proof"


@pytest.mark.usefixtures("alice")
def test_two_authorization_headers_are_refused_at_userinfo(
    server: ServerThread, http: httpx.Client, native_app: Registered, machine: Registered
) -> None:
    key = generate_proof_key()
    code, verifier = _code(server, native_app)
    bound = _exchange(http, native_app, code, verifier, proof(key, server)).json()["access_token"]
    plain = machine_token(http, machine).json()["access_token"]
    good = proof(key, server, "/userinfo", "GET", access_token=bound)
    # Whichever one a proxy in front judged, the server reads none of them.
    for first, second in ((f"DPoP {bound}", f"Bearer {plain}"), (f"Bearer {plain}", "Bearer x")):
        answer = http.get(
            "/userinfo",
            headers=[("Authorization", first), ("Authorization", second), ("DPoP", good)],
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "invalid_request"
        assert 'error="invalid_request"' in answer.headers["www-authenticate"]
    # The proof was not spent by the refusals: the same request, sent once, is answered.
    ok = http.get("/userinfo", headers={"Authorization": f"DPoP {bound}", "DPoP": good})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    "token", [b"\xe9\xe9\xe9", b"a.b.c", b"eyJhbGciOiJub25lIn0.e30.", b"x" * 9000]
)
def test_hostile_dpop_tokens_at_userinfo_are_401(http: httpx.Client, token: bytes) -> None:
    answer = http.get("/userinfo", headers=[(b"Authorization", b"DPoP " + token), (b"DPoP", b"x")])
    # An oversized header is cut off before it is read (431, SECURITY.md case 11).
    assert answer.status_code == (431 if len(token) > 8192 else 401), answer.text
    assert answer.json()["error"] in ("invalid_token", "invalid_request")


@pytest.mark.parametrize("value", ["short", "x" * 43 + "=", "é" * 43, "a" * 44])
def test_a_malformed_dpop_jkt_is_refused_at_par(
    http: httpx.Client, web_app: Registered, settings: Settings, value: str
) -> None:
    from tests.oauth.test_par import pushed_form, stored_rows

    form, _ = pushed_form(dpop_jkt=value)
    response = http.post("/par", data=form, auth=(web_app.client_id, web_app.secret or ""))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert stored_rows(settings) == []


@pytest.mark.parametrize(
    "uri",
    [
        "urn:ietf:params:oauth:request_uri:" + "é" * 10,
        "urn:ietf:params:oauth:request_uri:%ED%A0%80",
        "urn:ietf:params:oauth:request_uri:" + "a" * 5000,
        "URN:IETF:PARAMS:OAUTH:REQUEST_URI:abc",
        "https://evil.example/request",
    ],
)
def test_hostile_request_uris_are_refused_on_our_page(
    server: ServerThread, web_app: Registered, uri: str
) -> None:
    from urllib.parse import quote

    url = f"{server.base_url}/authorize?client_id={web_app.client_id}&request_uri={quote(uri)}"
    page = httpx.get(url)
    assert page.status_code == 400, page.text
    assert "invalid_request_uri" in page.text
    assert "location" not in page.headers
