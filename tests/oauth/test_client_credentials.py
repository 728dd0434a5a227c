"""The token endpoint with client_credentials, over real HTTP."""

from __future__ import annotations

import httpx
import jwt as pyjwt
import pytest

from tests.oauth.conftest import Registered, Registrar
from tokensmith.oauth.clients import NewClient
from tokensmith.settings import Settings

# Above storage: SQLite only (the storage suites, and test_authorization, run on both databases).


def grant(http: httpx.Client, client: Registered, **form: str) -> httpx.Response:
    assert client.secret is not None
    return http.post(
        "/token",
        data={"grant_type": "client_credentials", **form},
        auth=(client.client_id, client.secret),
    )


def verify_with_published_jwks(
    http: httpx.Client, token: str, audience: str | list[str]
) -> dict[str, object]:
    """A relying party that knows nothing but the issuer's published JWKS."""
    jwks = pyjwt.PyJWKSet.from_dict(http.get("/jwks").json())
    header = pyjwt.get_unverified_header(token)
    key = next(k for k in jwks.keys if k.key_id == header["kid"])
    return pyjwt.decode(token, key.key, algorithms=[key.algorithm_name], audience=audience)


def test_jwt_access_token_follows_rfc_9068(
    http: httpx.Client, machine: Registered, settings: Settings
) -> None:
    response = grant(http, machine, scope="api:read")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "api:read"
    assert "refresh_token" not in body  # RFC 6749 §4.4.3: not for client credentials

    header = pyjwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    claims = verify_with_published_jwks(http, body["access_token"], settings.issuer)
    assert claims["iss"] == settings.issuer
    assert claims["sub"] == machine.client_id
    assert claims["client_id"] == machine.client_id
    assert claims["scope"] == "api:read"
    assert claims["exp"] - claims["iat"] == 300
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) >= 16


def test_scope_rules(http: httpx.Client, machine: Registered) -> None:
    assert grant(http, machine).json()["scope"] == "api:read api:write"  # default: all allowed
    too_much = grant(http, machine, scope="api:read admin")
    assert too_much.status_code == 400
    assert too_much.json()["error"] == "invalid_scope"
    malformed = grant(http, machine, scope='api:read "x"')
    assert malformed.json()["error"] == "invalid_scope"


def test_resource_indicators_set_the_audience(http: httpx.Client, machine: Registered) -> None:
    one = grant(http, machine, resource="https://orders.example.com")
    assert one.status_code == 200
    claims = verify_with_published_jwks(
        http, one.json()["access_token"], "https://orders.example.com"
    )
    assert claims["aud"] == "https://orders.example.com"
    assert machine.secret is not None
    two = http.post(
        "/token",
        content="grant_type=client_credentials&resource=https%3A%2F%2Forders.example.com"
        "&resource=https%3A%2F%2Fbilling.example.com",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=(machine.client_id, machine.secret),
    )
    assert two.status_code == 200
    claims = verify_with_published_jwks(
        http, two.json()["access_token"], "https://billing.example.com"
    )
    assert claims["aud"] == ["https://orders.example.com", "https://billing.example.com"]
    for bad in ("https://evil.example.com", "https://orders.example.com#frag", "orders", "urn:x"):
        refused = grant(http, machine, resource=bad)
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_target"


def test_opaque_tokens_and_lifetimes(http: httpx.Client, register: Registrar) -> None:
    client = register(
        NewClient(
            "opaque",
            grant_types=("client_credentials",),
            scope="a",
            access_token_format="opaque",
            access_token_ttl=120,
        )
    )
    body = grant(http, client).json()
    assert body["access_token"].startswith("tsat_")
    assert body["expires_in"] == 120
    long_lived = register(
        NewClient("long", grant_types=("client_credentials",), access_token_ttl=999_999)
    )
    assert grant(http, long_lived).json()["expires_in"] == 3600  # capped by TOKEN_MAX_LIFETIME


def test_client_secret_post(http: httpx.Client, register: Registrar) -> None:
    client = register(
        NewClient("post", grant_types=("client_credentials",), auth_method="client_secret_post")
    )
    assert client.secret is not None
    ok = http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": client.secret,
        },
    )
    assert ok.status_code == 200
    # The registered method is the only one accepted.
    basic = http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(client.client_id, client.secret)
    )
    assert basic.status_code == 401
    assert basic.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "password", "username": "a", "password": "b"}, "unsupported_grant_type"),
        ({"grant_type": "implicit"}, "unsupported_grant_type"),
        ({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer"}, "unsupported_grant_type"),
        ({"grant_type": "authorization_code", "code": "x"}, "unauthorized_client"),
    ],
)
def test_grant_type_errors(
    http: httpx.Client, machine: Registered, form: dict[str, str], error: str
) -> None:
    assert machine.secret is not None
    response = http.post("/token", data=form, auth=(machine.client_id, machine.secret))
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_client_not_allowed_the_grant(http: httpx.Client, register: Registrar) -> None:
    web_app = register(
        NewClient(
            "web",
            grant_types=("authorization_code",),
            redirect_uris=("https://app.example.com/cb",),
        )
    )
    response = grant(http, web_app)
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"
    public = register(
        NewClient("spa", is_public=True, redirect_uris=("https://app.example.com/cb",))
    )
    response = http.post(
        "/token", data={"grant_type": "client_credentials", "client_id": public.client_id}
    )
    assert response.json()["error"] == "unauthorized_client"


def test_unknown_client_and_wrong_secret_look_the_same(
    http: httpx.Client, machine: Registered
) -> None:
    wrong = http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(machine.client_id, "tscs_wrong")
    )
    unknown = http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=("no-such-client", "tscs_wrong")
    )
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Basic ")
        assert response.headers["cache-control"] == "no-store"
    assert (
        wrong.json()
        == unknown.json()
        == {"error": "invalid_client", "error_description": "client authentication failed"}
    )


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic !!!notbase64",
        "Basic Zm9v",
        "Bearer abc",
        "Basic",
        "Digest username=x",
        "Basic " + "QQ==" * 200,
    ],
)
def test_malformed_client_authentication(http: httpx.Client, authorization: str) -> None:
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"authorization": authorization},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_credentials_in_header_and_body(http: httpx.Client, machine: Registered) -> None:
    assert machine.secret is not None
    response = http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_id": machine.client_id,
            "client_secret": machine.secret,
        },
        auth=(machine.client_id, machine.secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "client_id", ["x' OR '1'='1", "'; DROP TABLE clients; --", "a\\b%00", "ü" * 50]
)
def test_sql_metacharacters_in_client_id(http: httpx.Client, client_id: str) -> None:
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": "x"},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "SELECT" not in response.text
    assert "sql" not in response.text.lower()


def test_no_cors_headers_for_unregistered_origins(http: httpx.Client, machine: Registered) -> None:
    response = grant(http, machine)
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=(machine.client_id, machine.secret or ""),
        headers={"origin": "https://evil.example"},
    )
    assert "access-control-allow-origin" not in response.headers
