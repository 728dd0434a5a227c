"""SECURITY.md cases 16-30 and 34-37: redirects, codes, PKCE, refresh tokens and pages."""

from __future__ import annotations

import asyncio
import re
import secrets
from urllib.parse import urlencode

import httpx
import pytest

from tests.oauth.browser import Browser, Outcome
from tests.oauth.conftest import Registered, Registrar
from tests.support import ServerThread
from tokensmith.accounts.sessions import Session
from tokensmith.oauth.authorization import AuthorizationRequest, issue_code
from tokensmith.oauth.clients import NewClient
from tokensmith.oauth.pkce import s256
from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings

# The code flow end to end on both databases; the input checks above storage on SQLite.
pytestmark = [pytest.mark.usefixtures("alice"), pytest.mark.backends("sqlite", "postgresql")]
CALLBACK = "https://app.example.com/callback"


def auth_url(server: ServerThread, client: Registered, **overrides: str | None) -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    params: dict[str, str | None] = {
        "client_id": client.client_id,
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "openid api:read",
        "state": "st-" + secrets.token_hex(4),
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{server.base_url}/authorize?{query}", verifier


def exchange(
    http: httpx.Client,
    client: Registered,
    code: str,
    verifier: str | None,
    redirect_uri: str = CALLBACK,
) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier is not None:
        form["code_verifier"] = verifier
    return http.post("/token", data=form, auth=(client.client_id, client.secret or ""))


def login_and_get_code(
    server: ServerThread, client: Registered, **overrides: str | None
) -> tuple[Outcome, str]:
    url, verifier = auth_url(server, client, **overrides)
    return Browser(server.base_url).authorize(url), verifier


# -- 16, 17: redirect URIs ---------------------------------------------------------------------


@pytest.mark.backends("sqlite")  # input checks above storage
@pytest.mark.parametrize(
    "redirect_uri",
    [
        CALLBACK + "/",
        CALLBACK + "?x=1",
        CALLBACK + "#f",
        "https://APP.example.com/callback",
        "https://app.example.com/callback/../evil",
        "https://app.example.com/%2e%2e/callback",
        "https://app.example.com@evil.com/callback",
        "https://app.example.com\\@evil.com/callback",
        "https://evil.com/callback",
        "https://app.example.com:444/callback",
        "javascript:alert(1)",
        "http://app.example.com/callback",
        "",
        None,
    ],
)
def test_unregistered_redirect_uri_stays_on_our_page(
    server: ServerThread, web_app: Registered, redirect_uri: str | None
) -> None:
    url, _ = auth_url(server, web_app, redirect_uri=redirect_uri)
    response = httpx.get(url)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "redirect" in response.text.lower() or "missing" in response.text.lower()


@pytest.mark.backends("sqlite")  # input checks above storage
@pytest.mark.parametrize("client_id", ["unknown", "x' OR '1'='1", None])
def test_unknown_client_stays_on_our_page(
    server: ServerThread, web_app: Registered, client_id: str | None
) -> None:
    url, _ = auth_url(server, web_app, client_id=client_id)
    response = httpx.get(url)
    assert response.status_code == 400
    assert "location" not in response.headers


def test_loopback_redirect_any_port_but_nothing_else(
    server: ServerThread, native_app: Registered
) -> None:
    ok, _ = login_and_get_code(server, native_app, redirect_uri="http://127.0.0.1:61234/callback")
    assert ok.location.startswith("http://127.0.0.1:61234/callback?code=")
    for other in (
        "http://127.0.0.1:61234/callback2",
        "http://localhost:61234/callback",
        "http://127.0.0.1:61234/callback?x=1",
        "http://127.0.0.1:99999/callback",
        "http://evil@127.0.0.1:61234/callback",
        "https://127.0.0.1:61234/callback",
    ):
        url, _ = auth_url(server, native_app, redirect_uri=other)
        assert httpx.get(url).status_code == 400, other


# -- 18-20: errors that go back to the client ----------------------------------------------------


@pytest.mark.backends("sqlite")  # input checks above storage
@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"response_type": None}, "unsupported_response_type"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"max_age": "soon"}, "invalid_request"),
        # Digits to str.isdigit(), not to int(): this was a 500 (and Arabic-Indic "٣" a 3).
        ({"max_age": "\u00b2"}, "invalid_request"),
        ({"max_age": "\u00b9\u00b2"}, "invalid_request"),
        ({"max_age": "\u0663"}, "invalid_request"),
        ({"max_age": "+5"}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "invalid_request"),
    ],
)
def test_errors_redirect_with_state_and_iss(
    server: ServerThread,
    web_app: Registered,
    settings: Settings,
    overrides: dict[str, str | None],
    error: str,
) -> None:
    state = 'a b&c=<d>"é'
    url, _ = auth_url(server, web_app, state=state, **overrides)
    outcome = Outcome(httpx.get(url))
    assert outcome.response.status_code == 303
    assert outcome.location.startswith(CALLBACK + "?")
    assert outcome.query["error"] == error
    assert outcome.query["state"] == state  # byte for byte (26)
    assert outcome.query["iss"] == settings.issuer


def test_redirect_uri_must_match_at_the_token_endpoint(
    server: ServerThread, http: httpx.Client, register: Registrar
) -> None:
    two = register(
        NewClient(
            "two",
            grant_types=("authorization_code",),
            redirect_uris=(CALLBACK, "https://app.example.com/other"),
            scope="openid api:read",
        )
    )
    outcome, verifier = login_and_get_code(server, two)
    response = exchange(http, two, outcome.query["code"], verifier, "https://app.example.com/other")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


# -- 21-25: codes and PKCE -------------------------------------------------------------------------


def test_code_reuse_revokes_its_tokens(
    server: ServerThread, http: httpx.Client, web_app: Registered
) -> None:
    outcome, verifier = login_and_get_code(server, web_app)
    first = exchange(http, web_app, outcome.query["code"], verifier)
    assert first.status_code == 200
    tokens = first.json()
    again = exchange(http, web_app, outcome.query["code"], verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    active = http.post(
        "/introspect",
        data={"token": tokens["access_token"]},
        auth=(web_app.client_id, web_app.secret or ""),
    )
    assert active.json() == {"active": False}
    refreshed = http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(web_app.client_id, web_app.secret or ""),
    )
    assert refreshed.json()["error"] == "invalid_grant"


def test_twenty_parallel_exchanges_one_wins(
    server: ServerThread, http: httpx.Client, web_app: Registered
) -> None:
    outcome, verifier = login_and_get_code(server, web_app)
    form = {
        "grant_type": "authorization_code",
        "code": outcome.query["code"],
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
    }

    async def race() -> list[int]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            calls = [
                client.post("/token", data=form, auth=(web_app.client_id, web_app.secret or ""))
                for _ in range(20)
            ]
            return list(await asyncio.gather(*calls))

    responses = asyncio.run(race())
    winners = [r for r in responses if r.status_code == 200]
    # At most one answer carries tokens; the others are replays, so the winner's tokens end up
    # revoked too, even when a replay landed while the winner was still storing them (case 22).
    assert len(winners) <= 1
    assert sum(r.status_code == 400 for r in responses) == 20 - len(winners)
    for winner in winners:
        active = http.post(
            "/introspect",
            data={"token": winner.json()["access_token"]},
            auth=(web_app.client_id, web_app.secret or ""),
        )
        assert active.json() == {"active": False}


def test_another_clients_code(
    server: ServerThread, http: httpx.Client, web_app: Registered, register: Registrar
) -> None:
    thief = register(
        NewClient(
            "thief",
            grant_types=("authorization_code",),
            redirect_uris=(CALLBACK,),
            scope="openid api:read",
        )
    )
    outcome, verifier = login_and_get_code(server, web_app)
    response = exchange(http, thief, outcome.query["code"], verifier)
    assert response.json()["error"] == "invalid_grant"


def test_expired_code(
    http: httpx.Client, web_app: Registered, settings: Settings, alice: str
) -> None:
    async def old_code() -> str:
        services = await open_services(settings)
        try:
            now = services.clock.now() - 61
            session = Session(b"s" * 32, alice, now, "pwd", now, now + 3600)
            request = AuthorizationRequest(
                web_app.client_id, CALLBACK, "api:read", None, s256("v" * 43)
            )
            return await issue_code(
                services.codes, services.master.pepper, now, request, alice, session
            )
        finally:
            await services.close()

    response = exchange(http, web_app, asyncio.run(old_code()), "v" * 43)
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.backends("sqlite")  # input checks above storage
@pytest.mark.parametrize(
    "verifier",
    [None, "wrong" * 10, "a" * 42, "a" * 129, "a" * 42 + "!", "a" * 42 + " ", "ä" * 43],
)
def test_bad_code_verifiers(
    server: ServerThread, http: httpx.Client, web_app: Registered, verifier: str | None
) -> None:
    outcome, _ = login_and_get_code(server, web_app)
    response = exchange(http, web_app, outcome.query["code"], verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


# -- 27-30: refresh tokens ---------------------------------------------------------------------------


def tokens_for(server: ServerThread, http: httpx.Client, client: Registered) -> dict[str, str]:
    outcome, verifier = login_and_get_code(server, client)
    response = exchange(http, client, outcome.query["code"], verifier)
    assert response.status_code == 200, response.text
    return dict(response.json())


def refresh(http: httpx.Client, client: Registered, token: str, **form: str) -> httpx.Response:
    return http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": token, **form},
        auth=(client.client_id, client.secret or ""),
    )


def test_parallel_refreshes_never_fork(
    server: ServerThread, http: httpx.Client, web_app: Registered
) -> None:
    tokens = tokens_for(server, http, web_app)

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
            form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
            calls = [
                client.post("/token", data=form, auth=(web_app.client_id, web_app.secret or ""))
                for _ in range(20)
            ]
            return list(await asyncio.gather(*calls))

    responses = asyncio.run(race())
    winners = [r for r in responses if r.status_code == 200]
    # One rotation and a handful of duplicates answered with its successor: one chain. Twenty
    # at once are more than a handful, so the family ends (test_refresh_duplicates.py).
    assert len({r.json()["refresh_token"] for r in winners}) <= 1
    live = [
        r for r in winners if refresh(http, web_app, r.json()["refresh_token"]).status_code == 200
    ]
    assert len(live) <= 1


def test_refresh_scope_rules(server: ServerThread, http: httpx.Client, web_app: Registered) -> None:
    tokens = tokens_for(server, http, web_app)
    wider = refresh(http, web_app, tokens["refresh_token"], scope="api:read email")
    assert wider.status_code == 400
    assert wider.json()["error"] == "invalid_scope"
    narrower = refresh(http, web_app, tokens["refresh_token"], scope="api:read")
    assert narrower.status_code == 200
    assert narrower.json()["scope"] == "api:read"
    assert "id_token" not in narrower.json()
    # The successor keeps the original grant: asking for openid again is allowed.
    back = refresh(http, web_app, narrower.json()["refresh_token"], scope="openid api:read")
    assert back.status_code == 200
    assert "id_token" in back.json()


def test_refresh_with_another_clients_token(
    server: ServerThread, http: httpx.Client, web_app: Registered, register: Registrar
) -> None:
    other = register(
        NewClient(
            "other",
            grant_types=("refresh_token", "authorization_code"),
            redirect_uris=(CALLBACK,),
            scope="openid api:read",
        )
    )
    tokens = tokens_for(server, http, web_app)
    assert refresh(http, other, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert (
        refresh(http, web_app, tokens["refresh_token"]).status_code == 200
    )  # untouched by the attempt
    for junk in ("tsrt_unknown", "not-a-token", tokens["access_token"]):
        assert refresh(http, web_app, junk).json()["error"] == "invalid_grant"


def test_password_change_ends_refresh(
    server: ServerThread, http: httpx.Client, web_app: Registered, settings: Settings, alice: str
) -> None:
    tokens = tokens_for(server, http, web_app)

    async def change_password() -> None:
        from tokensmith.accounts.users import hash_password

        services = await open_services(settings)
        try:
            await services.users.set_password(
                alice, hash_password("a brand new password"), services.clock.now() + 1
            )
        finally:
            await services.close()

    asyncio.run(change_password())
    assert refresh(http, web_app, tokens["refresh_token"]).json()["error"] == "invalid_grant"


# -- login, consent, prompt, max_age -----------------------------------------------------------------


def test_prompt_none_without_session(server: ServerThread, web_app: Registered) -> None:
    url, _ = auth_url(server, web_app, prompt="none")
    outcome = Outcome(httpx.get(url))
    assert outcome.query["error"] == "login_required"


def test_session_and_consent_are_remembered(server: ServerThread, web_app: Registered) -> None:
    browser = Browser(server.base_url)
    url, _ = auth_url(server, web_app)
    assert "code" in browser.authorize(url).query
    # Logged in and consented: prompt=none now succeeds silently.
    url, _ = auth_url(server, web_app, prompt="none")
    silent = Outcome(browser.open(url))
    assert "code" in silent.query
    # New scope: consent is asked again (and prompt=none must refuse).
    url, _ = auth_url(server, web_app, prompt="none", scope="openid api:read email")
    assert Outcome(browser.open(url)).query["error"] == "consent_required"
    url, _ = auth_url(server, web_app, scope="openid api:read email")
    page = browser.open(url)
    assert 'action="/consent"' in page.text
    assert "email" in page.text


def test_prompt_login_and_max_age_force_a_login(server: ServerThread, web_app: Registered) -> None:
    browser = Browser(server.base_url)
    url, _ = auth_url(server, web_app)
    browser.authorize(url)
    for overrides in ({"prompt": "login"}, {"max_age": "0"}):
        url, _ = auth_url(server, web_app, **overrides)
        page = browser.open(url)
        assert 'action="/login"' in page.text  # max_age=0 too, even within the same second


def test_denied_consent(server: ServerThread, web_app: Registered) -> None:
    url, _ = auth_url(server, web_app)
    outcome = Browser(server.base_url).authorize(url, consent="deny")
    assert outcome.query["error"] == "access_denied"


def test_wrong_password_reveals_nothing(server: ServerThread, web_app: Registered) -> None:
    browser = Browser(server.base_url)
    url, _ = auth_url(server, web_app)
    page = browser.open(url)
    wrong = browser.submit(page, "/login", username="alice", password="wrong password")
    unknown = browser.submit(page, "/login", username="mallory", password="wrong password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Incorrect username or password." in wrong.text

    def masked(text: str, name: str) -> str:  # the sealed interaction is new on every page
        return re.sub(r'value="[^"]*"', 'value=""', text.replace(name, "X"))

    assert masked(wrong.text, "alice") == masked(unknown.text, "mallory")


# -- 34-37: pages and cookies ----------------------------------------------------------------------


@pytest.mark.backends("sqlite")  # input checks above storage
def test_pages_refuse_framing_and_carry_a_strict_csp(
    server: ServerThread, web_app: Registered
) -> None:
    url, _ = auth_url(server, web_app)
    page = httpx.get(url)
    assert page.headers["x-frame-options"] == "DENY"
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src" not in csp  # default-src 'none' forbids every script
    assert "default-src 'none'" in csp
    assert "form-action 'self' https://app.example.com" in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<script" not in page.text
    assert "access-control-allow-origin" not in page.headers  # 37


@pytest.mark.backends("sqlite")  # input checks above storage
def test_csrf_is_required(server: ServerThread, web_app: Registered) -> None:
    browser = Browser(server.base_url)
    url, _ = auth_url(server, web_app)
    page = browser.open(url)
    forged = browser.submit(
        page, "/login", csrf_token="forged", username="alice", password="correct horse battery"
    )
    assert forged.status_code == 403
    stranger = Browser(server.base_url)  # has the form's fields but not the cookie
    replayed = stranger.submit(page, "/login", username="alice", password="correct horse battery")
    assert replayed.status_code == 403


def test_session_id_changes_at_login_and_cookies_are_locked_down(
    server: ServerThread, web_app: Registered
) -> None:
    browser = Browser(server.base_url)
    browser.session.cookies.set("ts_session", "planted-by-attacker", domain="127.0.0.1")
    url, _ = auth_url(server, web_app)
    page = browser.open(url)
    response = browser.submit(page, "/login", username="alice", password="correct horse battery")
    cookie = response.headers["set-cookie"]
    assert "ts_session=" in cookie
    assert "planted-by-attacker" not in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie


@pytest.mark.backends("sqlite")  # input checks above storage
def test_tampered_interaction_is_refused(server: ServerThread, web_app: Registered) -> None:
    browser = Browser(server.base_url)
    url, _ = auth_url(server, web_app)
    page = browser.open(url)
    tampered = browser.submit(
        page,
        "/login",
        interaction="AAAA" + "B" * 60,
        username="alice",
        password="correct horse battery",
    )
    assert tampered.status_code == 400
    assert "expired" in tampered.text.lower()


@pytest.mark.backends("sqlite")  # input checks above storage
def test_secure_cookies_under_https(settings: Settings, web_app: Registered) -> None:
    https = settings.model_copy(update={"issuer": "https://auth.example.test"})
    with ServerThread(https) as running:
        url, _ = auth_url(running, web_app)
        page = httpx.get(url)
        cookie = page.headers["set-cookie"]
        assert cookie.startswith("__Host-ts_csrf=")
        assert "Secure" in cookie
        assert page.headers["strict-transport-security"].startswith("max-age=")
