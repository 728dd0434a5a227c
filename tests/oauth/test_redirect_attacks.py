"""Redirect URI attacks through the real server (SECURITY.md cases 16, 17 and 38).

Every string here is one that a lenient matcher (normalising, or parsing less strictly than
registration) would have accepted, sent to the wrong host, or crashed on. Each must give our own
error page: 400, HTML, no Location header, never a 500.
"""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest
import requests
from hypothesis import given, settings

from tests.core.test_redirect_uris import REGISTERED, may_match, mutated
from tests.core.test_redirect_uris import Registered as RegisteredURI
from tests.oauth.browser import Browser, Outcome
from tests.oauth.conftest import Registered, Registrar
from tests.oauth.test_authorization import CALLBACK, auth_url, exchange
from tests.support import OFFERED, ServerThread
from tokensmith.oauth.clients import NewClient

pytestmark = pytest.mark.usefixtures("alice")

HTTP_PROPERTY = settings(max_examples=150, deadline=None)
LOOPBACK_ATTACKS = [
    "http://127.0.0.1:1234@attacker.example/callback",
    "http://127.0.0.1:1234@attacker.example/cb",
    "http://127.0.0.1@attacker.example/callback",
    "http://127.0.0.1:1234\\@attacker.example/callback",
    "http://127.0.0.1:1234%40attacker.example/callback",
    "HTTP://127.0.0.1:1234/callback",
    "Http://127.0.0.1/callback",
    " http://127.0.0.1:1234/callback",
    "\thttp://127.0.0.1/callback",
    "http://127.0.0.1/callback ",
    "http://127.0.0.1:1234/callback?",
    "http://127.0.0.1:1234/callback#",
    "http://127.0.0.1/callback?",
    "http://127.0.0.1/callback#x",
    "http://[::1/callback",
    "http://[::1",
    "http://[127.0.0.1]/callback",
    "http://[::1]]/callback",
    "http://[::1%25lo]/callback",
    "http://127.0.0.1:0/callback",
    "http://127.0.0.1:080/callback",
    "http://127.0.0.1:65536/callback",
    "http://127.0.0.1:99999999999999999999/callback",
    "http://127.0.0.1:+80/callback",
    "http://127.0.0.1:80a/callback",
    "http://127.0.0.1:/callback",
    "http://127.0.0.1:1:2/callback",
    "http://127.0.0.1.attacker.example/callback",
    "http://127.0.0.1:1234/callback/../x",
    "http://127.0.0.1:1234/%2e%2e/callback",
    "http://127.0.0.1:1234/./callback",
    "http://127.0.0.1:1234//callback",
    "http://127.0.0.1:1234/callback/",
    "http://127.0.0.1:1234/Callback",
    "http://127.0.0.1:1234/callback[",
    "http://127.0.0.1:1234/caf\u00e9",
    "http://127.0.0.1\uff1a1234/callback",
    "http://localhost:1234/callback",
    "http://[::1]:1234/callback",
    "https://127.0.0.1:1234/callback",
    "//127.0.0.1:1234/callback",
    "http:/127.0.0.1/callback",
    "http:\\\\127.0.0.1\\callback",
]
WEB_ATTACKS = [
    "https://app.example.com:443/callback",
    "https://app.example.com./callback",
    "https://app.example.com/callback?",
    "https://app.example.com/callback#",
    "HTTPS://app.example.com/callback",
    " https://app.example.com/callback",
    "https://app.example.com/callback\x00",
    "https://app.example.com/callback%00",
    "https://a@app.example.com/callback",
    "https://app.example.com:1@attacker.example/callback",
    "https://[app.example.com]/callback",
    "https://app.example.com/./callback",
    "https://app.example.com/%63allback",
]


def _stays_on_our_page(response: httpx.Response | requests.Response) -> str | None:
    """None if the response is our error page; otherwise what is wrong with it."""
    if response.status_code != 400:
        return f"status {response.status_code}"
    if "location" in response.headers:
        return "a Location header"
    if not response.headers["content-type"].startswith("text/html"):
        return "not our HTML page"
    return None


def test_loopback_lookalikes_get_our_error_page(
    server: ServerThread, native_app: Registered, web_app: Registered
) -> None:
    wrong = {}
    for client, attacks in ((native_app, LOOPBACK_ATTACKS), (web_app, WEB_ATTACKS)):
        for attack in attacks:
            url, _ = auth_url(server, client, redirect_uri=attack)
            problem = _stays_on_our_page(httpx.get(url))
            if problem is not None:
                wrong[attack] = problem
    assert wrong == {}


def test_the_genuine_loopback_port_rule_still_works(
    server: ServerThread, http: httpx.Client, register: Registrar
) -> None:
    native = register(
        NewClient(
            "CLI v6",
            is_public=True,
            redirect_uris=("http://[::1]:8080/callback", "http://localhost:3000/cb"),
            scope="openid api:read",
        )
    )
    browser = Browser(server.base_url)
    for presented in ("http://[::1]:51000/callback", "http://[::1]/callback"):
        url, verifier = auth_url(server, native, redirect_uri=presented)
        outcome = browser.authorize(url)
        assert outcome.location.startswith(presented + "?code=")
        form = {
            "grant_type": "authorization_code",
            "code": outcome.query["code"],
            "redirect_uri": presented,
            "code_verifier": verifier,
            "client_id": native.client_id,  # a public client: no secret
        }
        response = http.post("/token", data=form)
        assert response.status_code == 200, response.text
    # localhost keeps working byte for byte, and only so (RFC 8252 §8.3).
    url, _ = auth_url(server, native, redirect_uri="http://localhost:3000/cb")
    assert browser.authorize(url).location.startswith("http://localhost:3000/cb?code=")
    url, _ = auth_url(server, native, redirect_uri="http://localhost:3001/cb")
    assert _stays_on_our_page(httpx.get(url)) is None


def test_registration_refuses_malformed_authorities_cleanly() -> None:
    for uri in ("http://[::1/cb", "http://[127.0.0.1]/cb", "http://127.0.0.1:1@a.example/cb"):
        with pytest.raises(ValueError, match=r"redirect URI|brackets"):
            NewClient("bad", is_public=True, redirect_uris=(uri,)).validated(
                "id", None, 0, offered=OFFERED
            )


AFTER_LOGOUT = "https://app.example.com/signed-out"
LOGOUT_ATTACKS = [
    AFTER_LOGOUT + "?",
    AFTER_LOGOUT + "#",
    AFTER_LOGOUT + "/",
    " " + AFTER_LOGOUT,
    "HTTPS://app.example.com/signed-out",
    "https://app.example.com:443/signed-out",
    "https://app.example.com@attacker.example/signed-out",
    "https://app.example.com\\@attacker.example/signed-out",
    "https://[app.example.com/signed-out",
    "https://app.example.com/./signed-out",
    "http://127.0.0.1:5/after",  # registered without a port: no leeway after logout
    "http://127.0.0.1:5@attacker.example/after",
    "http://[::1/after",
]


def test_logout_lookalikes_get_our_error_page(
    server: ServerThread, http: httpx.Client, register: Registrar
) -> None:
    rp = register(
        NewClient(
            "Relying Party",
            grant_types=("authorization_code",),
            redirect_uris=(CALLBACK,),
            post_logout_redirect_uris=(AFTER_LOGOUT, "http://127.0.0.1/after"),
            scope="openid",
        )
    )
    browser = Browser(server.base_url)
    url, verifier = auth_url(server, rp, scope="openid")
    tokens = exchange(http, rp, browser.authorize(url).query["code"], verifier).json()
    wrong = {}
    for attack in LOGOUT_ATTACKS:
        query = urlencode({"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": attack})
        problem = _stays_on_our_page(browser.open(f"{server.base_url}/logout?{query}"))
        if problem is not None:
            wrong[attack] = problem
    assert wrong == {}
    # Refused logouts changed nothing: the session is still there.
    url, _ = auth_url(server, rp, scope="openid", prompt="none")
    assert "code" in Outcome(browser.open(url)).query


def test_mutated_redirect_uris_through_the_real_app(
    server: ServerThread, register: Registrar
) -> None:
    """The unit property, end to end: a mutation that must not match gets our error page and
    never a 500; one that may (a loopback IP's port) gets the login page."""
    client = register(
        NewClient(
            "Everything",
            is_public=True,
            redirect_uris=tuple(r.uri for r in REGISTERED),
            scope="openid api:read",
        )
    )

    @HTTP_PROPERTY
    @given(mutated())
    def check(case: tuple[RegisteredURI, str]) -> None:
        _, presented = case
        expected = any(may_match(registered, presented) for registered in REGISTERED)
        url, _ = auth_url(server, client, redirect_uri=presented)
        response = httpx.get(url)
        if expected:
            assert response.status_code == 200, presented
            assert 'action="/login"' in response.text
        else:
            assert _stays_on_our_page(response) is None, presented

    check()
