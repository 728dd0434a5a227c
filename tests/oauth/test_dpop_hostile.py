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
from tokensmith.jose.dpop import generate_proof_key, make_proof, public_jwk
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


HOSTILE_CLAIMS = {
    "jti": ["123", '""', '"' + "j" * 257 + '"', "null", "[]", "{}"],
    "htm": ["null", "1", '"post"', '"POST "', "[]"],
    "htu": [
        "1",
        "null",
        '"http://[::1"',
        '"http://127.0.0.1:99999/token"',
        '"javascript:alert(1)"',
        '"http://u@127.0.0.1/token"',
        '"/token"',
        '""',
    ],
    "iat": ['"1"', "1.5", "true", "1e400", "1" + "0" * 30, "-1", "null"],
    "nonce": ["5", "[]", "{}"],
}


@pytest.mark.parametrize(
    ("member", "value"),
    [(member, value) for member, values in HOSTILE_CLAIMS.items() for value in values],
)
def test_signed_proofs_with_hostile_claims_are_refused_at_token(
    server: ServerThread, http: httpx.Client, machine: Registered, member: str, value: str
) -> None:
    """Each proof is signed by its own key, so every claim check is reached."""
    bad = raw_proof(generate_proof_key(), claims_text(server, "/token", "POST", **{member: value}))
    refused(machine_token(http, machine, DPoP=bad))


def _hostile_jwks() -> list[Any]:
    ec = public_jwk(generate_proof_key())
    return [
        [],
        "jwk",
        None,
        {},
        {"kty": "oct", "k": "c2VjcmV0"},
        {**ec, "x": 1},
        {**ec, "x": "not base64!"},
        {**ec, "x": "AA"},
        {**ec, "y": ec["x"]},  # not on the curve
        {**ec, "crv": "P-384"},
        {**ec, "alg": "ES384"},
        {**ec, "kty": "RSA"},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
        {"kty": "RSA", "n": "A" * 2000, "e": "AA"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AA"},
    ]


@pytest.mark.parametrize("index", range(len(_hostile_jwks())))
def test_hostile_jwk_headers_are_refused_at_token(
    server: ServerThread, http: httpx.Client, machine: Registered, index: int
) -> None:
    import base64
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    jwk = _hostile_jwks()[index]
    alg = "RS256" if isinstance(jwk, dict) and jwk.get("kty") == "RSA" else "ES256"
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": jwk}
    claims = claims_text(server, "/token", "POST")
    bad = f"{b64(json.dumps(header).encode())}.{b64(claims.encode())}.{b64(bytes(64))}"
    refused(machine_token(http, machine, DPoP=bad))


def test_a_bound_token_is_exchanged_by_its_own_client_only_with_its_key(
    server: ServerThread, http: httpx.Client, register: Any
) -> None:
    """A stolen bound token and its client's secret cannot trade the binding for a bearer token."""
    from tests.oauth.test_token_exchange import ORDERS, exchange, exchanger

    client = exchanger(register, "svc")
    assert client.secret is not None
    key = generate_proof_key()
    issued = http.post(
        "/token",
        data={"grant_type": "client_credentials", "resource": ORDERS},
        auth=(client.client_id, client.secret),
        headers={"DPoP": proof(key, server)},
    )
    assert issued.status_code == 200, issued.text
    bound = issued.json()["access_token"]

    def trade(signer: dict[str, Any] | None) -> httpx.Response:
        headers = {"DPoP": proof(signer, server)} if signer is not None else {}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as peer:
            return exchange(peer, client, bound)

    for signer in (None, generate_proof_key()):
        answer = trade(signer)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "invalid_grant"
        assert "access_token" not in answer.json()
    ok = trade(key)
    assert ok.status_code == 200, ok.text
    assert ok.json()["token_type"] == "DPoP"


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_age": "1e9"},
        {"max_age": "-1"},
        {"max_age": "9" * 400},
        {"prompt": "none login"},
        {"prompt": "ÿ"},
        {"scope": "x" * 8000},
        {"resource": "not a url"},
        {"resource": "https://api.example/#frag"},
        {"redirect_uri": "https://app.example.com/callbäck"},
        {"code_challenge": "a" * 1000},
        {"code_challenge_method": "S512"},
        {"response_type": "token"},
        {"nonce": "n" * 8000},
    ],
)
def test_hostile_pushed_parameters_are_json_errors(
    http: httpx.Client, web_app: Registered, settings: Settings, overrides: dict[str, str]
) -> None:
    from tests.oauth.test_par import pushed_form, stored_rows

    form, _ = pushed_form(**overrides)
    response = http.post("/par", data=form, auth=(web_app.client_id, web_app.secret or ""))
    # A resource is judged at the exchange, as for a plain /authorize (case 122); the rest here.
    assert response.status_code in (201, 400), response.text
    if response.status_code == 400:
        assert response.json()["error"]
        assert stored_rows(settings) == []


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"%FF%FE=%ED%A0%80", "application/x-www-form-urlencoded"),
        (b'{"response_type": "code"}', "application/json"),
        (b"\xff\xfe\x00", "application/x-www-form-urlencoded"),
        (b"a=" + b"&a=".join([b"1"] * 2000), "application/x-www-form-urlencoded"),
    ],
)
def test_hostile_push_bodies_are_json_errors(
    http: httpx.Client, web_app: Registered, content: bytes, content_type: str
) -> None:
    response = http.post(
        "/par",
        content=content,
        headers={"Content-Type": content_type},
        auth=(web_app.client_id, web_app.secret or ""),
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]


@pytest.mark.usefixtures("alice")
def test_userinfo_with_the_replay_record_unreachable_is_503_not_500(
    settings: Settings, server: ServerThread, http: httpx.Client, native_app: Registered
) -> None:
    from tests.oauth.test_dpop_server import second_node
    from tests.support import free_port

    key = generate_proof_key()
    code, verifier = _code(server, native_app)
    token = _exchange(http, native_app, code, verifier, proof(key, server)).json()["access_token"]
    unreachable = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    with second_node(unreachable) as other:
        dpop = proof(key, server, "/userinfo", "GET", access_token=token)
        answer = other.get("/userinfo", headers={"Authorization": f"DPoP {token}", "DPoP": dpop})
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == "temporarily_unavailable"


def test_a_proof_is_remembered_past_its_window_on_a_slower_clock(
    settings: Settings, server: ServerThread, http: httpx.Client, machine: Registered
) -> None:
    """A node whose clock runs 5 s behind still accepts a proof that long: the record outlives it."""
    import asyncio

    import sqlalchemy as sa

    from tokensmith.persistence.tables import dpop_proofs
    from tokensmith.runtime.services import open_engine

    issued_at = int(time.time())
    once = make_proof(
        generate_proof_key(), method="POST", url=server.base_url + "/token", now=issued_at
    )
    assert machine_token(http, machine, DPoP=once).status_code == 200

    async def expiries() -> list[int]:
        engine = await open_engine(settings)
        try:
            async with engine.connect() as conn:
                return [row.expires_at for row in await conn.execute(sa.select(dpop_proofs))]
        finally:
            await engine.dispose()

    (expires_at,) = asyncio.run(expiries())
    assert expires_at > issued_at + settings.dpop_proof_max_age + 5
