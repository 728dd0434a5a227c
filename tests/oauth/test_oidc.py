"""OpenID Connect: userinfo (header-only bearer) and RP-initiated logout (SECURITY.md case 38)."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

import httpx
import pytest

from tests.oauth.browser import Browser, Outcome
from tests.oauth.conftest import Registered, Registrar
from tests.oauth.test_authorization import CALLBACK, auth_url, exchange
from tests.support import ServerThread
from tokensmith.oauth.clients import NewClient

# Above storage: SQLite only (the storage suites, and test_authorization, run on both databases).
pytestmark = pytest.mark.usefixtures("alice")
AFTER_LOGOUT = "https://app.example.com/signed-out"


@pytest.fixture
def rp(register: Registrar) -> Registered:
    return register(
        NewClient(
            "Relying Party",
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=(CALLBACK,),
            post_logout_redirect_uris=(AFTER_LOGOUT,),
            scope="openid profile email",
        )
    )


def sign_in(
    server: ServerThread, http: httpx.Client, client: Registered, scope: str
) -> tuple[Browser, dict[str, str]]:
    browser = Browser(server.base_url)
    url, verifier = auth_url(server, client, scope=scope)
    outcome = browser.authorize(url)
    response = exchange(http, client, outcome.query["code"], verifier)
    assert response.status_code == 200, response.text
    return browser, dict(response.json())


def test_userinfo_claims_by_scope(
    server: ServerThread, http: httpx.Client, rp: Registered, alice: str
) -> None:
    _, tokens = sign_in(server, http, rp, "openid profile email")
    bearer = {"authorization": f"Bearer {tokens['access_token']}"}
    info = http.get("/userinfo", headers=bearer)
    assert info.status_code == 200
    assert info.json() == {
        "sub": alice,
        "preferred_username": "alice",
        "email": "alice@example.com",
    }
    assert http.post("/userinfo", headers=bearer).json()["sub"] == alice
    _, narrow = sign_in(server, http, rp, "openid")
    assert http.get(
        "/userinfo", headers={"authorization": f"Bearer {narrow['access_token']}"}
    ).json() == {"sub": alice}


def test_userinfo_refusals(
    server: ServerThread, http: httpx.Client, rp: Registered, machine: Registered
) -> None:
    _, tokens = sign_in(server, http, rp, "openid")
    token = tokens["access_token"]
    none = http.get("/userinfo")
    assert none.status_code == 401
    assert none.headers["www-authenticate"] == 'Bearer realm="tokensmith"'
    in_query = http.get(f"/userinfo?access_token={token}")
    assert in_query.status_code == 400
    in_body = http.post("/userinfo", data={"access_token": token})
    assert in_body.status_code == 401
    bad = http.get("/userinfo", headers={"authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
    machine_token = http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=(machine.client_id, machine.secret or ""),
    ).json()["access_token"]
    no_openid = http.get("/userinfo", headers={"authorization": f"Bearer {machine_token}"})
    assert no_openid.status_code == 403
    assert 'error="insufficient_scope"' in no_openid.headers["www-authenticate"]
    assert 'scope="openid"' in no_openid.headers["www-authenticate"]
    http.post("/revoke", data={"token": token}, auth=(rp.client_id, rp.secret or ""))
    assert http.get("/userinfo", headers={"authorization": f"Bearer {token}"}).status_code == 401


def test_logout_ends_session_and_revokes_its_tokens(
    server: ServerThread, http: httpx.Client, rp: Registered
) -> None:
    browser, tokens = sign_in(server, http, rp, "openid profile")
    state = secrets.token_urlsafe(8)
    query = urlencode(
        {
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": AFTER_LOGOUT,
            "state": state,
        }
    )
    response = browser.open(f"{server.base_url}/logout?{query}")
    assert response.status_code == 303
    assert response.headers["location"] == f"{AFTER_LOGOUT}?state={state}"
    assert "ts_session=" in response.headers["set-cookie"]  # cleared
    refreshed = http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(rp.client_id, rp.secret or ""),
    )
    assert refreshed.json()["error"] == "invalid_grant"
    assert (
        http.get(
            "/userinfo", headers={"authorization": f"Bearer {tokens['access_token']}"}
        ).status_code
        == 401
    )
    url, _ = auth_url(server, rp, prompt="none", scope="openid profile")
    assert Outcome(browser.open(url)).query["error"] == "login_required"


@pytest.mark.parametrize(
    "target", [AFTER_LOGOUT + "/", "https://evil.example.com/", AFTER_LOGOUT + "?x=1", CALLBACK]
)
def test_logout_redirects_only_to_registered_uris(
    server: ServerThread, http: httpx.Client, rp: Registered, target: str
) -> None:
    browser, tokens = sign_in(server, http, rp, "openid")
    query = urlencode({"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": target})
    response = browser.open(f"{server.base_url}/logout?{query}")
    assert response.status_code == 400
    assert "location" not in response.headers


def test_logout_redirect_needs_a_valid_id_token_hint(
    server: ServerThread, http: httpx.Client, rp: Registered
) -> None:
    browser, tokens = sign_in(server, http, rp, "openid")
    no_hint = browser.open(
        f"{server.base_url}/logout?" + urlencode({"post_logout_redirect_uri": AFTER_LOGOUT})
    )
    assert no_hint.status_code == 400
    header, payload, _ = tokens["id_token"].split(".")
    for forged in (
        f"{header}.{payload}.",
        tokens["access_token"],
        "garbage",
        f"{header}.{payload}.AAAA",
    ):
        response = browser.open(
            f"{server.base_url}/logout?"
            + urlencode({"id_token_hint": forged, "post_logout_redirect_uri": AFTER_LOGOUT})
        )
        assert response.status_code == 400
        assert "location" not in response.headers
    mismatched = browser.open(
        f"{server.base_url}/logout?"
        + urlencode({"id_token_hint": tokens["id_token"], "client_id": "someone-else"})
    )
    assert mismatched.status_code == 400


def test_logout_without_hint_asks_first(
    server: ServerThread, http: httpx.Client, rp: Registered
) -> None:
    browser, tokens = sign_in(server, http, rp, "openid")
    page = browser.open(f"{server.base_url}/logout")
    assert page.status_code == 200
    assert 'action="/logout"' in page.text
    assert "alice" in page.text
    forged = browser.submit(page, "/logout", csrf_token="forged")
    assert forged.status_code == 403
    assert (
        http.post(
            "/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            auth=(rp.client_id, rp.secret or ""),
        ).status_code
        == 200
    )  # still signed in
    done = browser.submit(page, "/logout")
    assert done.status_code == 200
    assert "signed out" in done.text


def test_token_endpoint_cors_only_for_registered_origins(
    server: ServerThread, http: httpx.Client, register: Registrar
) -> None:
    spa = register(
        NewClient(
            "SPA",
            is_public=True,
            redirect_uris=("https://spa.example.com/cb",),
            scope="openid",
            cors_origins=("https://spa.example.com",),
        )
    )
    form = {
        "grant_type": "refresh_token",
        "refresh_token": "tsrt_unknown",
        "client_id": spa.client_id,
    }
    allowed = http.post("/token", data=form, headers={"origin": "https://spa.example.com"})
    assert allowed.json()["error"] == "invalid_grant"  # the browser app can read its errors too
    assert allowed.headers["access-control-allow-origin"] == "https://spa.example.com"
    assert allowed.headers["vary"] == "Origin"
    for origin in ("https://evil.example.com", "https://spa.example.com.evil.com", "null"):
        refused = http.post("/token", data=form, headers={"origin": origin})
        assert "access-control-allow-origin" not in refused.headers
    revoked = http.post(
        "/revoke",
        data={"token": "x", "client_id": spa.client_id},
        headers={"origin": "https://spa.example.com"},
    )
    assert revoked.headers["access-control-allow-origin"] == "https://spa.example.com"
    authorize = httpx.get(
        f"{server.base_url}/authorize?client_id={spa.client_id}",
        headers={"origin": "https://spa.example.com"},
    )
    assert "access-control-allow-origin" not in authorize.headers  # 37: never on /authorize
