"""Nothing a client or a person can send gets a 500: seeded random requests at every endpoint."""

from __future__ import annotations

import base64
import random
from urllib.parse import urlencode

import httpx
import pytest

from tests.oauth.conftest import Registered

pytestmark = pytest.mark.usefixtures("alice")

NAMES = [
    "grant_type", "code", "redirect_uri", "code_verifier", "client_id", "client_secret", "scope",
    "refresh_token", "token", "token_type_hint", "resource", "response_type", "state", "nonce",
    "code_challenge", "code_challenge_method", "prompt", "max_age", "client_assertion",
    "client_assertion_type", "username", "password", "csrf_token", "interaction", "decision",
    "id_token_hint", "post_logout_redirect_uri", "request", "request_uri",
]  # fmt: skip
VALUES = [
    "", " ", "'", '"', "\\", "<script>alert(1)</script>", "%00", "%0d%0a", "../../etc/passwd",
    "x' OR '1'='1", "null", "[]", "{}", "-1", "0", "99999999999999999999", "1e309", "NaN",
    "authorization_code", "client_credentials", "refresh_token", "password", "code", "S256", "plain",
    "none", "login consent", "tsat_x", "tsrt_x", "tsac_x", "tscs_x", "a.b.c", "eyJhbGciOiJub25lIn0.e30.",
    "https://app.example.com/callback", "http://127.0.0.1:1/callback", "javascript:alert(1)",
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "ü" * 50, "A" * 5000, "\u202e", "😀",
]  # fmt: skip
HEADERS = [
    None,
    "Basic",
    "Basic Og==",
    "Basic ***",
    "Bearer",
    "Bearer a.b.c",
    "Bearer tsat_x",
    "Negotiate x",
]


def random_params(rng: random.Random, client: Registered) -> list[tuple[str, str]]:
    params = [(rng.choice(NAMES), rng.choice(VALUES)) for _ in range(rng.randint(0, 8))]
    if rng.random() < 0.5:
        params.append(("client_id", client.client_id))
    return params


JSON_BODIES = [
    b"", b"{", b"[]", b"{}", b"null", b'"x"', b"[" * 200 + b"]" * 200, b'{"name": 1}',
    b'{"name": "n", "scope": "a", "expires_in": -1}', b'{"name": "n", "scope": "a", "rate_limit": 1e309}',
    b'[{"token": "tsk_live_x"}]', b'[{"token": null}]', b'{"grace": "1y"}', "😀".encode(), b"\xff\xfe",
]  # fmt: skip
JSON_PATHS = [
    "/api-keys/leaks", "/admin/api-keys", "/admin/api-keys/AAAAAAAAAAAA/rotate",
    "/admin/api-keys/..%2f/revoke", "/admin/lockouts/clear", "/api-keys/verify",
]  # fmt: skip


def test_random_json_and_keys_never_get_a_server_error(
    http: httpx.Client, web_app: Registered
) -> None:
    rng = random.Random(20261124)
    for _ in range(150):
        path = rng.choice(JSON_PATHS)
        headers = {"content-type": rng.choice(["application/json", "text/plain", ""])}
        if rng.random() < 0.7:
            headers["authorization"] = rng.choice(
                [h for h in HEADERS if h] + ["Bearer " + "A" * 9000]
            )
        if rng.random() < 0.5:
            value = rng.choice(VALUES[:30]).strip()  # httpx refuses a header that is only blanks
            headers["x-api-key"] = value or "tsk_"
        response = http.post(path, content=rng.choice(JSON_BODIES), headers=headers)
        assert response.status_code < 500, (path, headers, response.text[:300])
        assert response.headers["content-type"].startswith("application/json")
    for path in ("/admin/api-keys", "/admin/audit?since=x&limit=-5", "/admin/api-keys/%00"):
        assert http.get(path, headers={"authorization": "Bearer tsat_x"}).status_code in (401, 404)


def test_random_requests_never_get_a_server_error(http: httpx.Client, web_app: Registered) -> None:
    rng = random.Random(20261123)
    seen: set[int] = set()
    for _ in range(250):
        params = random_params(rng, web_app)
        header = rng.choice(HEADERS)
        headers = {"authorization": header} if header else {}
        choice = rng.randrange(10)
        if choice == 0:
            response = http.get("/authorize?" + urlencode(params), headers=headers)
        elif choice == 1:
            response = http.get("/logout?" + urlencode(params))
        elif choice == 2:
            response = http.get("/userinfo", headers=headers)
        else:
            paths = ["/token", "/introspect", "/revoke", "/login", "/consent", "/logout", "/par"]
            path = paths[choice - 3]
            response = http.post(
                path,
                content=urlencode(params),
                headers={**headers, "content-type": "application/x-www-form-urlencoded"},
            )
        seen.add(response.status_code)
        assert response.status_code < 500, (choice, params, header, response.text[:300])
        assert "Traceback" not in response.text
        kind = response.headers.get("content-type", "")
        assert kind.startswith(("application/json", "text/html")) or response.status_code in (
            200,
            303,
        )
    assert len(seen) >= 4  # the requests really reached different refusals


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


# Nested past Python's recursion limit: json.loads raises RecursionError, which is no ValueError.
DEEP = _b64("[" * 2500)
HEADER = _b64('{"alg": "ES256", "kid": "k"}')


@pytest.mark.parametrize("segment", ["header", "payload"])
def test_jwt_segments_nested_past_the_recursion_limit_are_refused(
    http: httpx.Client, machine: Registered, segment: str
) -> None:
    """Every endpoint that reads a JWT's header or claims before trusting it: a bearer token, a
    token to introspect or revoke, an ID token hint, a client assertion."""
    assert machine.secret is not None
    token = f"{DEEP}.{_b64('{}')}.AAAA" if segment == "header" else f"{HEADER}.{DEEP}.AAAA"
    bearer = {"authorization": f"Bearer {token}"}
    client = (machine.client_id, machine.secret)
    assertion = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": token,
    }
    responses = {
        "userinfo": http.get("/userinfo", headers=bearer),
        "leaks": http.post("/api-keys/leaks", headers=bearer, json=[]),
        "admin": http.get("/admin/api-keys", headers=bearer),
        "introspect": http.post("/introspect", data={"token": token}, auth=client),
        "revoke": http.post("/revoke", data={"token": token}, auth=client),
        "logout": http.get("/logout", params={"id_token_hint": token}),
        "assertion": http.post("/token", data=assertion),
    }
    for name, response in responses.items():
        assert response.status_code < 500, (name, response.text[:300])
    assert responses["userinfo"].status_code == 401
    assert responses["introspect"].json() == {"active": False}
