"""Every WWW-Authenticate the server sends, byte for byte, from the one renderer (core/challenges).

Pinned as the server sent them before the renderer existed: moving the call sites onto it must not
change a single header a client already parses.
"""

from __future__ import annotations

import httpx

from tests.oauth.conftest import Registered, Registrar
from tests.support import METRICS_AUTH
from tokensmith.oauth.clients import NewClient

_INVALID = (
    'Bearer realm="tokensmith", error="invalid_token", '
    'error_description="the access token is invalid, expired or revoked"'
)


def _token(http: httpx.Client, client: Registered, scope: str | None = None) -> str:
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    response = http.post("/token", data=data, auth=(client.client_id, client.secret or ""))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _challenge(response: httpx.Response) -> str:
    return response.headers["www-authenticate"]


def test_bearer_challenges_at_userinfo(http: httpx.Client, machine: Registered) -> None:
    assert _challenge(http.get("/userinfo")) == 'Bearer realm="tokensmith"'
    bad = http.get("/userinfo", headers={"authorization": "Bearer not-a-token"})
    assert (bad.status_code, _challenge(bad)) == (401, _INVALID)
    assert bad.json() == {
        "error": "invalid_token",
        "error_description": "the access token is invalid, expired or revoked",
    }
    no_openid = http.get("/userinfo", headers={"authorization": f"Bearer {_token(http, machine)}"})
    assert no_openid.status_code == 403
    assert _challenge(no_openid) == (
        'Bearer realm="tokensmith", error="insufficient_scope", '
        'error_description="the openid scope is required", scope="openid"'
    )
    assert no_openid.json() == {
        "error": "insufficient_scope",
        "error_description": "the openid scope is required",
    }


def test_bearer_challenges_at_the_admin_api(http: httpx.Client, register: Registrar) -> None:
    anonymous = http.get("/admin/api-keys")
    assert anonymous.status_code == 401 and _challenge(anonymous) == 'Bearer realm="tokensmith"'
    assert anonymous.json() == {
        "error": "invalid_request",
        "error_description": "send the access token as Authorization: Bearer",
    }
    assert anonymous.headers["cache-control"] == "no-store"
    bogus = http.get("/admin/api-keys", headers={"authorization": "Bearer tsat_bogus"})
    assert _challenge(bogus) == _INVALID
    console = register(NewClient("console", grant_types=("client_credentials",), scope="other"))
    narrow = _token(http, console, "other")
    refused = http.get("/admin/api-keys", headers={"authorization": f"Bearer {narrow}"})
    assert refused.status_code == 403
    assert _challenge(refused) == (
        'Bearer realm="tokensmith", error="insufficient_scope", '
        'error_description="the tokensmith:admin scope is required", scope="tokensmith:admin"'
    )


def test_basic_challenge_on_invalid_client(http: httpx.Client, machine: Registered) -> None:
    for path in ("/token", "/introspect", "/revoke"):
        wrong = http.post(
            path,
            data={"grant_type": "client_credentials", "token": "x"},
            auth=(machine.client_id, "wrong"),
        )
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        assert _challenge(wrong) == 'Basic realm="tokensmith", charset="UTF-8"'
    # Another error at /token carries no challenge.
    unsupported = http.post(
        "/token", data={"grant_type": "password"}, auth=(machine.client_id, machine.secret or "")
    )
    assert unsupported.status_code == 400 and "www-authenticate" not in unsupported.headers


def test_api_key_challenges_at_verify(http: httpx.Client, machine: Registered) -> None:
    missing = http.post("/api-keys/verify")
    assert missing.status_code == 401
    assert _challenge(missing) == (
        'ApiKey realm="tokensmith", error="invalid_key", '
        'error_description="send the API key in the X-Api-Key header"'
    )
    malformed = http.post("/api-keys/verify", headers={"x-api-key": "tsk_nope"})
    assert _challenge(malformed) == (
        'ApiKey realm="tokensmith", error="invalid_key", '
        'error_description="the API key is malformed or its checksum is wrong"'
    )
    assert malformed.json() == {
        "error": "invalid_key",
        "error_description": "the API key is malformed or its checksum is wrong",
    }
    # A caller that fails client authentication gets the Basic challenge of the client scheme,
    # the same as at /token: one pipeline, one challenge.
    wrong_client = http.post(
        "/api-keys/verify", headers={"x-api-key": "tsk_nope"}, auth=(machine.client_id, "wrong")
    )
    assert wrong_client.status_code == 401 and wrong_client.json()["error"] == "invalid_client"
    assert _challenge(wrong_client) == 'Basic realm="tokensmith", charset="UTF-8"'


def test_metrics_challenge(http: httpx.Client) -> None:
    anonymous = http.get("/metrics")
    assert anonymous.status_code == 401
    assert _challenge(anonymous) == 'Bearer realm="metrics", error="invalid_token"'
    assert http.get("/metrics", headers=METRICS_AUTH).status_code == 200
