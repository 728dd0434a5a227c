"""CORS preflights: answered at the token, revocation and userinfo endpoints for an origin a
client registered, and nowhere else (not introspection, never the authorization endpoint)."""

from __future__ import annotations

import httpx
import pytest

from tests.oauth.conftest import Registered, Registrar
from tests.oauth.test_authorization import CALLBACK
from tests.oauth.test_oidc import sign_in
from tests.support import ServerThread
from tokensmith.oauth.clients import NewClient

SPA = "https://spa.example.com"


@pytest.fixture
def spa(register: Registrar) -> Registered:
    return register(
        NewClient(
            "SPA",
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=(CALLBACK,),
            scope="openid profile",
            cors_origins=(SPA,),
        )
    )


def ask(
    http: httpx.Client, path: str, origin: str | None, method: str = "POST", headers: str = ""
) -> httpx.Response:
    sent = {"access-control-request-method": method}
    if origin is not None:
        sent["origin"] = origin
    if headers:
        sent["access-control-request-headers"] = headers
    return http.options(path, headers=sent)


@pytest.mark.parametrize(
    ("path", "method"), [("/token", "POST"), ("/revoke", "POST"), ("/userinfo", "GET")]
)
def test_a_registered_origin_gets_a_preflight(
    http: httpx.Client, spa: Registered, path: str, method: str
) -> None:
    response = ask(http, path, SPA, method, "Authorization, Content-Type, DPoP")
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == SPA
    assert method in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-allow-headers"] == "authorization, content-type, dpop"
    assert response.headers["access-control-max-age"] == "600"
    assert response.headers["vary"] == "Origin"
    assert "access-control-allow-credentials" not in response.headers  # no cookies here


@pytest.mark.parametrize(
    ("origin", "method", "headers"),
    [
        ("https://evil.example.com", "POST", ""),
        ("https://spa.example.com.evil.com", "POST", ""),
        ("https://SPA.example.com", "POST", ""),
        ("http://spa.example.com", "POST", ""),
        ("null", "POST", ""),
        ("*", "POST", ""),
        (None, "POST", ""),
        (SPA, "DELETE", ""),
        (SPA, "", ""),
        (SPA, "POST", "x-custom"),
        (SPA, "POST", "authorization, cookie"),
    ],
)
def test_anything_else_gets_no_cors_headers(
    http: httpx.Client, spa: Registered, origin: str | None, method: str, headers: str
) -> None:
    for path in ("/token", "/revoke", "/userinfo"):
        response = ask(http, path, origin, method, headers)
        assert response.status_code == 204
        assert not any(h.startswith("access-control-") for h in response.headers), path


@pytest.mark.parametrize("path", ["/introspect", "/authorize", "/login", "/consent", "/jwks"])
def test_no_preflight_where_browsers_do_not_fetch(
    http: httpx.Client, spa: Registered, path: str
) -> None:
    response = ask(http, path, SPA)
    assert response.status_code == 405
    assert not any(h.startswith("access-control-") for h in response.headers)


def test_userinfo_answers_its_client_origin_only(
    server: ServerThread, http: httpx.Client, spa: Registered, alice: str, register: Registrar
) -> None:
    other = register(
        NewClient(
            "other",
            is_public=True,
            redirect_uris=(CALLBACK,),
            cors_origins=("https://other.example.com",),
        )
    )
    assert other.client_id
    _, tokens = sign_in(server, http, spa, "openid")
    bearer = {"authorization": f"Bearer {tokens['access_token']}"}
    mine = http.get("/userinfo", headers={**bearer, "origin": SPA})
    assert mine.status_code == 200 and mine.headers["access-control-allow-origin"] == SPA
    assert mine.headers["access-control-expose-headers"] == "DPoP-Nonce"  # RFC 9449 §8
    # Another client's origin passes a preflight, but cannot read this client's answers.
    assert ask(http, "/userinfo", "https://other.example.com", "GET").status_code == 204
    theirs = http.get("/userinfo", headers={**bearer, "origin": "https://other.example.com"})
    assert theirs.status_code == 200 and "access-control-allow-origin" not in theirs.headers
