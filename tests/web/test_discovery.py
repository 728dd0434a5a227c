"""Discovery, JWKS, health, readiness and metrics through real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support import METRICS_AUTH, ServerThread
from tokensmith.settings import Settings

# Above storage: SQLite only (the storage suites, and test_authorization, run on both databases).

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}


@pytest.fixture
def server(settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(settings) as running:
        yield running


@pytest.fixture
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield client


def test_both_discovery_documents(http: httpx.Client, settings: Settings) -> None:
    oauth = http.get("/.well-known/oauth-authorization-server")
    oidc = http.get("/.well-known/openid-configuration")
    assert oauth.status_code == oidc.status_code == 200
    assert oauth.headers["content-type"] == "application/json"
    assert oauth.json() == oidc.json()
    body = oauth.json()
    assert body["issuer"] == settings.issuer
    assert body["jwks_uri"] == settings.issuer + "/jwks"


def test_discovery_advertises_only_what_answers(http: httpx.Client, settings: Settings) -> None:
    """Every endpoint URL in the metadata exists; nothing unimplemented is listed."""
    body = http.get("/.well-known/openid-configuration").json()
    urls = {k: v for k, v in body.items() if k.endswith(("_uri", "_endpoint")) and k != "issuer"}
    expected = {  # GET without parameters: the JWKS answers, /authorize explains, the rest are POST
        "jwks_uri": 200,
        "authorization_endpoint": 400,
        "userinfo_endpoint": 401,
        "end_session_endpoint": 200,
        "token_endpoint": 405,
        "introspection_endpoint": 405,
        "revocation_endpoint": 405,
        "device_authorization_endpoint": 405,
        "pushed_authorization_request_endpoint": 405,
    }
    assert set(urls) == set(expected)
    for name, url in urls.items():
        assert url.startswith(settings.issuer), name
        assert http.get(url.removeprefix(settings.issuer)).status_code == expected[name], name
    assert "registration_endpoint" not in body
    assert "private_key_jwt" in body["token_endpoint_auth_methods_supported"]
    assert "none" not in body["token_endpoint_auth_signing_alg_values_supported"]
    assert body["response_types_supported"] == ["code"]
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["id_token_signing_alg_values_supported"] == ["ES256"]
    assert body["authorization_response_iss_parameter_supported"] is True
    assert body["require_pushed_authorization_requests"] is False  # TOKENSMITH_REQUIRE_PAR
    assert sorted(body["grant_types_supported"]) == [
        "authorization_code",
        "client_credentials",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    ]
    assert "password" not in str(body)
    assert "implicit" not in str(body)


def test_jwks_publishes_public_keys_only(http: httpx.Client) -> None:
    response = http.get("/jwks")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jwk-set+json"
    assert response.headers["cache-control"] == "public, max-age=300"
    keys = response.json()["keys"]
    assert len(keys) == 2
    for jwk in keys:
        assert {"kid", "alg", "use", "kty"} <= jwk.keys()
        assert not PRIVATE_MEMBERS & jwk.keys()
        assert jwk["alg"] == "ES256"


def test_health_and_readiness(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "signing_key": "ok"}}


def test_metrics_use_route_templates(http: httpx.Client) -> None:
    http.get("/jwks")
    for i in range(20):
        http.get(f"/no/such/path/{i}")
    text = http.get("/metrics", headers=METRICS_AUTH).text
    assert 'tokensmith_http_requests_total{method="GET",route="/jwks",status="200"}' in text
    assert 'route="unmatched",status="404"' in text
    assert "/no/such/path" not in text  # raw paths never become labels
    assert 'tokensmith_signing_keys{state="active"} 1.0' in text


@pytest.mark.parametrize(
    "path", ["/jwks", "/healthz", "/nope", "/.well-known/openid-configuration"]
)
def test_security_headers_on_every_response(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "strict-transport-security" not in response.headers  # plain-http issuer
    assert "server" not in response.headers
    assert "access-control-allow-origin" not in response.headers


def test_no_store_unless_public(http: httpx.Client) -> None:
    assert http.get("/healthz").headers["cache-control"] == "no-store"
    assert http.get("/nope").headers["cache-control"] == "no-store"


def test_request_ids(http: httpx.Client) -> None:
    generated = http.get("/healthz").headers["x-request-id"]
    assert len(generated) == 24
    assert (
        http.get("/healthz", headers={"x-request-id": "trace-1234abcd"}).headers["x-request-id"]
        == "trace-1234abcd"
    )
    for hostile in ["short", "has space in it", "x" * 65, "<script>alert(1)</script>"]:
        echoed = http.get("/healthz", headers={"x-request-id": hostile}).headers["x-request-id"]
        assert echoed != hostile


def test_unknown_path_and_method_are_json(http: httpx.Client) -> None:
    missing = http.get("/nope")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "error_description": "no such endpoint"}
    wrong = http.post("/jwks")
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "invalid_request"
    assert "GET" in wrong.headers["allow"]


def test_a_405_lists_every_method_the_path_answers(http: httpx.Client) -> None:
    """RFC 9110 §15.5.6: Allow names the methods of the path, whichever feature declared each
    (/logout's GET and POST are two routes; /token's OPTIONS is its CORS preflight)."""
    expected = {
        "/logout": {"GET", "HEAD", "POST"},
        "/token": {"POST", "OPTIONS"},
        "/userinfo": {"GET", "HEAD", "POST", "OPTIONS"},
        "/jwks": {"GET", "HEAD"},
    }
    for path, methods in expected.items():
        answer = http.request("PUT", path)
        assert answer.status_code == 405, path
        assert {m.strip() for m in answer.headers["allow"].split(",")} == methods, path
    # Each method still reaches its own handler: POST the confirmation form (no CSRF cookie).
    assert http.post("/logout", data={"csrf_token": "x"}).status_code == 403
    assert http.head("/logout").status_code == 200


@pytest.mark.parametrize("name", ["access_token", "refresh_token", "client_secret", "api_key"])
def test_credentials_in_a_query_are_refused_and_not_logged(
    http: httpx.Client, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    secret = "s3cr3t-value-that-must-not-be-logged"
    with caplog.at_level("INFO"):
        response = http.get(f"/jwks?{name}={secret}")
        http.get(f"/.well-known/openid-configuration?x=1&{name}={secret}")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert name in response.json()["error_description"]
    assert secret not in response.text
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    for record in server_side:  # the test's own client logs its URL; the server must not
        assert secret not in record.getMessage()
        assert secret not in str(record.__dict__)
    assert any(getattr(r, "path", None) == "/jwks" for r in caplog.records)


def test_hsts_under_an_https_issuer(settings: Settings) -> None:
    https = settings.model_copy(update={"issuer": "https://auth.example.test"})
    with ServerThread(https) as running:
        response = httpx.get(running.base_url + "/healthz")
        assert response.headers["strict-transport-security"].startswith("max-age=")
        metadata = httpx.get(running.base_url + "/.well-known/oauth-authorization-server").json()
        assert metadata["issuer"] == "https://auth.example.test"


def test_a_grant_switched_off_is_gone_from_discovery_and_from_token(settings: Settings) -> None:
    """TOKENSMITH_GRANT_TYPES: the registry, discovery and /token follow the one setting."""
    only_code = settings.model_copy(update={"grant_types": "authorization_code,refresh_token"})
    with ServerThread(only_code) as running, httpx.Client(base_url=running.base_url) as http:
        body = http.get("/.well-known/openid-configuration").json()
        assert sorted(body["grant_types_supported"]) == ["authorization_code", "refresh_token"]
        answer = http.post(
            "/token", data={"grant_type": "client_credentials"}, auth=("anyone", "secret")
        )
        assert answer.status_code == 400
        assert answer.json()["error"] == "unsupported_grant_type"
