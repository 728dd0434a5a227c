"""DPoP at the authorization server (RFC 9449), through a running server: /token binds tokens to
the proof's key, refuses every bad proof of §4.3 and §11 before the grant changes anything, and
userinfo and introspection honour the binding (SECURITY.md cases 79-89)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt as pyjwt
import pytest

from tests.oauth.browser import Browser
from tests.oauth.conftest import Registered, Registrar
from tests.support import ServerThread, free_port
from tokensmith.jose.dpop import (
    access_token_hash,
    generate_proof_key,
    jwk_thumbprint,
    make_proof,
    public_jwk,
)
from tokensmith.oauth.clients import NewClient
from tokensmith.oauth.pkce import s256
from tokensmith.settings import Settings

LOOPBACK = "http://127.0.0.1/callback"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def now() -> int:
    return int(time.time())


def proof(
    key: dict[str, Any], server: ServerThread, path: str = "/token", method: str = "POST", **kw: Any
) -> str:
    return make_proof(key, method=method, url=server.base_url + path, now=now(), **kw)


def forged(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"sig") -> str:
    parts = [b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(signature)]
    return ".".join(parts)


def claims_of(http: httpx.Client, token: str) -> dict[str, Any]:
    """The access token's claims, verified by PyJWT against the server's JWKS."""
    kid = pyjwt.get_unverified_header(token)["kid"]
    keys = pyjwt.PyJWKSet.from_dict(http.get("/jwks").json())
    key = next(k for k in keys.keys if k.key_id == kid)
    return dict(
        pyjwt.decode(token, key.key, algorithms=[key.algorithm_name], options={"verify_aud": False})
    )


@contextlib.contextmanager
def second_node(settings: Settings) -> Iterator[httpx.Client]:
    """Another server on the same database (and Redis, if set), with the same issuer."""
    with (
        ServerThread(settings, port=free_port()) as other,
        httpx.Client(base_url=other.base_url, timeout=10) as client,
    ):
        yield client


def machine_token(http: httpx.Client, machine: Registered, **headers: str) -> httpx.Response:
    assert machine.secret is not None
    return http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "api:read"},
        auth=(machine.client_id, machine.secret),
        headers=headers,
    )


def refused(response: httpx.Response, error: str = "invalid_dpop_proof", status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert "access_token" not in response.json()


# -- binding at /token ---------------------------------------------------------------------------


def test_client_credentials_token_is_bound_to_the_proof_key(
    server: ServerThread, http: httpx.Client, machine: Registered
) -> None:
    key = generate_proof_key()
    response = machine_token(http, machine, DPoP=proof(key, server))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    claims = claims_of(http, body["access_token"])
    assert claims["cnf"] == {"jkt": jwk_thumbprint(public_jwk(key))}
    assert "dpop-nonce" not in response.headers  # nonces are off by default
    # Without a proof, the same client still gets a plain bearer token.
    plain = machine_token(http, machine).json()
    assert plain["token_type"] == "Bearer" and "cnf" not in claims_of(http, plain["access_token"])


def test_discovery_lists_the_proof_algorithms(http: httpx.Client) -> None:
    metadata = http.get("/.well-known/oauth-authorization-server").json()
    algs = metadata["dpop_signing_alg_values_supported"]
    assert "ES256" in algs and "EdDSA" in algs
    assert not [alg for alg in algs if alg == "none" or alg.startswith("HS")]


def _bad_proofs(server: ServerThread) -> dict[str, str]:
    """Every stateless §4.3 failure, each as the one thing wrong with an otherwise good proof."""
    key = generate_proof_key()
    jwk = public_jwk(key)
    url = server.base_url + "/token"
    good = {"jti": secrets.token_hex(8), "htm": "POST", "htu": url, "iat": now()}
    head = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}
    secret = b"s" * 32
    hs_header = b64(json.dumps({**head, "alg": "HS256"}).encode())
    signing_input = f"{hs_header}.{b64(json.dumps(good).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    private = dict(key)
    return {
        "wrong htm": make_proof(key, method="GET", url=url, now=now()),
        "wrong htu path": make_proof(
            key, method="POST", url=server.base_url + "/revoke", now=now()
        ),
        "wrong htu host": make_proof(
            key, method="POST", url="http://evil.example/token", now=now()
        ),
        "stale iat": make_proof(key, method="POST", url=url, now=now() - 3600),
        "future iat": make_proof(key, method="POST", url=url, now=now() + 3600),
        "alg none": forged({**head, "alg": "none"}, good, b""),
        "alg HS256": f"{signing_input}.{b64(mac)}",
        "private key in jwk": forged({**head, "jwk": private}, good),
        "wrong typ": forged({**head, "typ": "JWT"}, good),
        "bad signature": forged(head, good, bytes(64)),
        "no jwk": forged({"typ": "dpop+jwt", "alg": "ES256"}, good),
        "not a JWS": "not-a-proof",
        "non-JSON": f"{b64(b'{not json')}.{b64(b'{}')}.{b64(b'x')}",
    }


@pytest.mark.parametrize(
    "case",
    [
        "wrong htm",
        "wrong htu path",
        "wrong htu host",
        "stale iat",
        "future iat",
        "alg none",
        "alg HS256",
        "private key in jwk",
        "wrong typ",
        "bad signature",
        "no jwk",
        "not a JWS",
        "non-JSON",
    ],
)
def test_bad_proofs_are_refused_at_token(
    server: ServerThread, http: httpx.Client, machine: Registered, case: str
) -> None:
    refused(machine_token(http, machine, DPoP=_bad_proofs(server)[case]))


def test_an_oversize_proof_is_refused_before_parsing(
    http: httpx.Client, machine: Registered
) -> None:
    refused(machine_token(http, machine, DPoP="a" * 9000), "invalid_request", 431)


def test_two_dpop_headers_are_refused(
    server: ServerThread, http: httpx.Client, machine: Registered
) -> None:
    key = generate_proof_key()
    assert machine.secret is not None
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=(machine.client_id, machine.secret),
        headers=[("DPoP", proof(key, server)), ("DPoP", proof(key, server))],
    )
    refused(response)


def test_htu_is_the_issuers_url_whatever_the_host_header_says(
    server: ServerThread, http: httpx.Client, machine: Registered
) -> None:
    key = generate_proof_key()
    # A proof made for the host the request names is refused: the issuer decides the URL.
    spoofed = make_proof(key, method="POST", url="http://evil.example/token", now=now())
    refused(machine_token(http, machine, DPoP=spoofed, Host="evil.example"))
    honest = machine_token(http, machine, DPoP=proof(key, server), Host="evil.example")
    assert honest.status_code == 200, honest.text


def test_a_replayed_proof_is_refused(
    server: ServerThread, http: httpx.Client, machine: Registered
) -> None:
    once = proof(generate_proof_key(), server)
    assert machine_token(http, machine, DPoP=once).status_code == 200
    refused(machine_token(http, machine, DPoP=once))


def test_a_replayed_proof_is_refused_on_another_node(
    settings: Settings, server: ServerThread, http: httpx.Client, machine: Registered
) -> None:
    once = proof(generate_proof_key(), server)
    with second_node(settings) as second:
        assert machine_token(second, machine, DPoP=once).status_code == 200
    refused(machine_token(http, machine, DPoP=once))


def test_a_dpop_bound_client_must_send_a_proof(
    server: ServerThread, http: httpx.Client, register: Registrar
) -> None:
    bound = register(
        NewClient(
            "bound",
            grant_types=("client_credentials",),
            scope="api:read",
            dpop_bound_access_tokens=True,
        )
    )
    refused(machine_token(http, bound))
    response = machine_token(http, bound, DPoP=proof(generate_proof_key(), server))
    assert response.status_code == 200 and response.json()["token_type"] == "DPoP"


# -- the code flow and refresh tokens --------------------------------------------------------------


def _code(server: ServerThread, client: Registered, **extra: str) -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    query = urlencode(
        {
            "client_id": client.client_id,
            "redirect_uri": LOOPBACK,
            "response_type": "code",
            "scope": "openid api:read",
            "state": "s",
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
            **extra,
        }
    )
    outcome = Browser(server.base_url).authorize(f"{server.base_url}/authorize?{query}")
    return outcome.query["code"], verifier


def _exchange(
    http: httpx.Client, client: Registered, code: str, verifier: str, dpop: str | None
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": LOOPBACK,
        "client_id": client.client_id,
    }
    return http.post("/token", data=form, headers={"DPoP": dpop} if dpop else {})


def _refresh(
    http: httpx.Client, client: Registered, token: str, dpop: str | None
) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": token}
    auth = (client.client_id, client.secret) if client.secret else None
    if auth is None:
        form["client_id"] = client.client_id
    return http.post("/token", data=form, auth=auth, headers={"DPoP": dpop} if dpop else {})


@pytest.mark.usefixtures("alice")
def test_a_refused_proof_leaves_the_code_usable(
    server: ServerThread, http: httpx.Client, native_app: Registered
) -> None:
    key = generate_proof_key()
    code, verifier = _code(server, native_app)
    stale = make_proof(key, method="POST", url=server.base_url + "/token", now=now() - 3600)
    refused(_exchange(http, native_app, code, verifier, stale))
    response = _exchange(http, native_app, code, verifier, proof(key, server))
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"


@pytest.mark.usefixtures("alice")
@pytest.mark.backends("sqlite", "postgresql")
def test_a_public_clients_refresh_tokens_are_bound(
    server: ServerThread, http: httpx.Client, native_app: Registered
) -> None:
    key, other = generate_proof_key(), generate_proof_key()
    code, verifier = _code(server, native_app)
    tokens = _exchange(http, native_app, code, verifier, proof(key, server)).json()
    token = tokens["refresh_token"]
    # Another key, or no proof at all: refused, and the refresh token is not rotated.
    refused(_refresh(http, native_app, token, proof(other, server)), "invalid_grant")
    refused(_refresh(http, native_app, token, None))
    refused(_refresh(http, native_app, token, "garbage"))
    renewed = _refresh(http, native_app, token, proof(key, server))
    assert renewed.status_code == 200, renewed.text
    body = renewed.json()
    assert body["token_type"] == "DPoP"
    assert claims_of(http, body["access_token"])["cnf"]["jkt"] == jwk_thumbprint(key)
    # The successor is bound too.
    refused(_refresh(http, native_app, body["refresh_token"], None))


@pytest.mark.usefixtures("alice")
def test_a_confidential_clients_refresh_tokens_are_not_bound(
    server: ServerThread, http: httpx.Client, register: Registrar
) -> None:
    web = register(
        NewClient(
            "web",
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=(LOOPBACK,),
            scope="openid api:read",
        )
    )
    assert web.secret is not None
    key = generate_proof_key()
    code, verifier = _code(server, web)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": LOOPBACK,
    }
    first = http.post(
        "/token", data=form, auth=(web.client_id, web.secret), headers={"DPoP": proof(key, server)}
    ).json()
    assert first["token_type"] == "DPoP"
    plain = _refresh(http, web, first["refresh_token"], None)
    assert plain.status_code == 200 and plain.json()["token_type"] == "Bearer"
    other = generate_proof_key()
    bound = _refresh(http, web, plain.json()["refresh_token"], proof(other, server)).json()
    assert claims_of(http, bound["access_token"])["cnf"]["jkt"] == jwk_thumbprint(other)


@pytest.mark.usefixtures("alice")
def test_dpop_jkt_binds_the_code_to_a_key(
    server: ServerThread, http: httpx.Client, native_app: Registered
) -> None:
    key, other = generate_proof_key(), generate_proof_key()
    jkt = jwk_thumbprint(key)
    code, verifier = _code(server, native_app, dpop_jkt=jkt)
    refused(_exchange(http, native_app, code, verifier, proof(other, server)), "invalid_grant")
    code, verifier = _code(server, native_app, dpop_jkt=jkt)
    refused(_exchange(http, native_app, code, verifier, None))
    code, verifier = _code(server, native_app, dpop_jkt=jkt)
    response = _exchange(http, native_app, code, verifier, proof(key, server))
    assert response.status_code == 200, response.text
    assert claims_of(http, response.json()["access_token"])["cnf"]["jkt"] == jkt


@pytest.mark.usefixtures("alice")
@pytest.mark.parametrize("value", ["short", "x" * 43 + "=", "a" * 42 + "!"])
def test_a_malformed_dpop_jkt_is_refused_at_authorize(
    server: ServerThread, native_app: Registered, value: str
) -> None:
    verifier = secrets.token_urlsafe(48)
    query = urlencode(
        {
            "client_id": native_app.client_id,
            "redirect_uri": LOOPBACK,
            "response_type": "code",
            "scope": "openid",
            "state": "s",
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
            "dpop_jkt": value,
        }
    )
    page = Browser(server.base_url).open(f"{server.base_url}/authorize?{query}")
    assert page.status_code in (302, 303)
    assert "error=invalid_request" in page.headers["location"]


# -- nonces ----------------------------------------------------------------------------------------


class TestNonces:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"dpop_nonce": True})

    def test_a_proof_without_the_servers_nonce_gets_one(
        self, server: ServerThread, http: httpx.Client, machine: Registered
    ) -> None:
        key = generate_proof_key()
        first = machine_token(http, machine, DPoP=proof(key, server))
        refused(first, "use_dpop_nonce")
        nonce = first.headers["dpop-nonce"]
        refused(
            machine_token(http, machine, DPoP=proof(key, server, nonce="stale")), "use_dpop_nonce"
        )
        retried = machine_token(http, machine, DPoP=proof(key, server, nonce=nonce))
        assert retried.status_code == 200, retried.text
        assert retried.headers["dpop-nonce"]  # every DPoP answer carries a fresh one

    @pytest.mark.usefixtures("alice")
    def test_userinfo_asks_for_the_nonce_too(
        self, server: ServerThread, http: httpx.Client, native_app: Registered
    ) -> None:
        key = generate_proof_key()
        code, verifier = _code(server, native_app)
        nonce = _exchange(http, native_app, code, verifier, proof(key, server)).headers[
            "dpop-nonce"
        ]
        answer = _exchange(http, native_app, code, verifier, proof(key, server, nonce=nonce))
        token = answer.json()["access_token"]

        def userinfo(**kw: Any) -> httpx.Response:
            dpop = proof(key, server, "/userinfo", "GET", access_token=token, **kw)
            return http.get("/userinfo", headers={"Authorization": f"DPoP {token}", "DPoP": dpop})

        asked = userinfo()
        assert asked.status_code == 401
        assert 'error="use_dpop_nonce"' in asked.headers["www-authenticate"]
        ok = userinfo(nonce=asked.headers["dpop-nonce"])
        assert ok.status_code == 200, ok.text
        assert ok.headers["dpop-nonce"]

    def test_every_node_accepts_the_others_nonce(
        self, settings: Settings, server: ServerThread, http: httpx.Client, machine: Registered
    ) -> None:
        key = generate_proof_key()
        nonce = machine_token(http, machine, DPoP=proof(key, server)).headers["dpop-nonce"]
        with second_node(settings) as second:
            answer = machine_token(second, machine, DPoP=proof(key, server, nonce=nonce))
        assert answer.status_code == 200, answer.text


# -- introspection and userinfo ------------------------------------------------------------------


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
def test_introspection_returns_the_binding(
    server: ServerThread, http: httpx.Client, register: Registrar, token_format: str
) -> None:
    client = register(
        NewClient(
            "svc",
            grant_types=("client_credentials",),
            scope="api:read",
            access_token_format=token_format,  # type: ignore[arg-type]
        )
    )
    assert client.secret is not None
    key = generate_proof_key()
    token = machine_token(http, client, DPoP=proof(key, server)).json()["access_token"]
    body = http.post("/introspect", data={"token": token}, auth=(client.client_id, client.secret))
    answer = body.json()
    assert answer["active"] is True
    assert answer["cnf"] == {"jkt": jwk_thumbprint(key)}
    assert answer["token_type"] == "DPoP"


@pytest.mark.usefixtures("alice")
def test_userinfo_takes_a_bound_token_only_with_its_proof(
    server: ServerThread, http: httpx.Client, native_app: Registered
) -> None:
    key, other = generate_proof_key(), generate_proof_key()
    code, verifier = _code(server, native_app)
    token = _exchange(http, native_app, code, verifier, proof(key, server)).json()["access_token"]

    def userinfo(scheme: str, dpop: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"{scheme} {token}"}
        if dpop is not None:
            headers["DPoP"] = dpop
        return http.get("/userinfo", headers=headers)

    def at_userinfo(signer: dict[str, Any], **kw: Any) -> str:
        return proof(signer, server, "/userinfo", "GET", **kw)

    # As a bearer token: refused, with a DPoP challenge naming the algorithms.
    as_bearer = userinfo("Bearer")
    assert as_bearer.status_code == 401
    challenge = as_bearer.headers["www-authenticate"]
    assert challenge.startswith("DPoP ") and 'error="invalid_token"' in challenge
    assert 'algs="' in challenge and "ES256" in challenge
    for bad in (
        None,  # no proof
        at_userinfo(key),  # no ath
        at_userinfo(key, access_token="another token"),  # wrong ath
        at_userinfo(other, access_token=token),  # another key than cnf.jkt
        proof(key, server, "/userinfo", "POST", access_token=token),  # wrong htm
        proof(key, server, "/token", "GET", access_token=token),  # wrong htu
    ):
        answer = userinfo("DPoP", bad)
        assert answer.status_code == 401, answer.text
        assert 'error="invalid_dpop_proof"' in answer.headers["www-authenticate"]
    good = at_userinfo(key, access_token=token)
    ok = userinfo("DPoP", good)
    assert ok.status_code == 200, ok.text
    assert ok.json()["sub"]
    replayed = userinfo("DPoP", good)
    assert replayed.status_code == 401
    assert access_token_hash(token)  # the ath the good proof carried


def test_an_unbound_token_is_not_accepted_with_the_dpop_scheme(
    server: ServerThread, http: httpx.Client, machine: Registered
) -> None:
    token = machine_token(http, machine).json()["access_token"]
    answer = http.get("/userinfo", headers={"Authorization": f"DPoP {token}"})
    assert answer.status_code == 401


class TestSharedThroughRedis:
    """With TOKENSMITH_REDIS_URL set, the replay record lives in Redis, not the database."""

    @pytest.fixture
    def settings(self, settings: Settings, redis_prefix: str) -> Settings:
        from tests.support import REDIS_URL

        return settings.model_copy(
            update={"redis_url": REDIS_URL, "redis_key_prefix": redis_prefix}
        )

    def test_a_replayed_proof_is_refused_on_another_node(
        self, settings: Settings, server: ServerThread, http: httpx.Client, machine: Registered
    ) -> None:
        import redis

        from tests.support import REDIS_URL

        once = proof(generate_proof_key(), server)
        with second_node(settings) as second:
            assert machine_token(second, machine, DPoP=once).status_code == 200
        refused(machine_token(http, machine, DPoP=once))
        assert redis.Redis.from_url(REDIS_URL).keys(f"{settings.redis_key_prefix}dpop:*")


@pytest.mark.usefixtures("alice")
def test_the_device_grant_binds_a_public_clients_refresh_tokens(
    server: ServerThread, http: httpx.Client, register: Registrar
) -> None:
    from tests.support import approve_device_code
    from tokensmith.oauth.device_authorization import DEVICE_CODE_GRANT

    tv = register(
        NewClient(
            "TV", is_public=True, grant_types=(DEVICE_CODE_GRANT, "refresh_token"), scope="api:read"
        )
    )
    started = http.post("/device_authorization", data={"client_id": tv.client_id}).json()
    approve_device_code(server.base_url, started["user_code"], "alice", "correct horse battery")
    key = generate_proof_key()
    form = {
        "grant_type": DEVICE_CODE_GRANT,
        "device_code": started["device_code"],
        "client_id": tv.client_id,
    }
    tokens = http.post("/token", data=form, headers={"DPoP": proof(key, server)})
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["token_type"] == "DPoP"
    refresh_token = tokens.json()["refresh_token"]
    refused(_refresh(http, tv, refresh_token, proof(generate_proof_key(), server)), "invalid_grant")
    assert _refresh(http, tv, refresh_token, proof(key, server)).status_code == 200
