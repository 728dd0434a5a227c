"""The browser sign-in (RFC 8252) against the real server's pages: code + PKCE, loopback
redirect, state, iss and nonce checked, the ID token validated; refresh and logout after it."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from tests.client.conftest import Browser, Registered
from tests.support import ServerThread
from tokensmith.client import (
    ClientError,
    FileStore,
    IdTokenError,
    LoginError,
    ServerMetadata,
    Session,
    SessionExpired,
    login,
)


def sign_in(
    metadata: ServerMetadata, cli_client: Registered, store: FileStore, home: Path, opener: Any,
    timeout: float = 10,
) -> Session:  # fmt: skip
    return login(
        metadata,
        cli_client.client_id,
        store,
        scope="openid profile email api:read",
        opener=opener,
        home=home,
        timeout=timeout,
        dpop=False,  # bearer tokens here; DPoP: test_dpop_end_to_end.py
    )


def test_browser_sign_in_stores_a_session_and_refreshes_it(
    metadata: ServerMetadata, cli_client: Registered, store: FileStore, home: Path,
    browser: Browser,
) -> None:  # fmt: skip
    session = sign_in(metadata, cli_client, store, home, browser)
    sent = parse_qs(urlsplit(browser.opened[0]).query)
    assert sent["code_challenge_method"] == ["S256"] and len(sent["state"][0]) >= 43
    redirect = sent["redirect_uri"][0]
    assert redirect.startswith("http://127.0.0.1:") and redirect.endswith("/callback")
    assert browser.callback is not None and browser.callback.status_code == 200
    assert "close this window" in browser.callback.text

    stored = store.load(metadata.issuer, cli_client.client_id)
    assert stored is not None and stored.subject and stored.claims["email"] == "alice@example.com"
    assert set(stored.scope.split()) == {"openid", "profile", "email", "api:read"}
    first = session.access_token()  # the sign-in's own token, from memory
    for path in (home / "sessions").iterdir():
        assert first.value not in path.read_text()  # access tokens are never stored
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    # A new process would start from the store alone: it refreshes, and the store rotates.
    later = Session.load(metadata, cli_client.client_id, store, home=home)
    fresh = later.access_token()
    assert fresh.value != first.value and later.refreshes == 1
    rotated = store.load(metadata.issuer, cli_client.client_id)
    assert rotated is not None and rotated.refresh_token != stored.refresh_token
    answer = httpx.get(
        metadata.userinfo_endpoint or "", headers={"authorization": f"Bearer {fresh.value}"}
    )
    assert answer.status_code == 200 and answer.json()["sub"] == stored.subject
    later.close()
    session.close()


def test_logout_revokes_the_refresh_token_and_deletes_the_session(
    metadata: ServerMetadata, cli_client: Registered, store: FileStore, home: Path,
    browser: Browser,
) -> None:  # fmt: skip
    session = sign_in(metadata, cli_client, store, home, browser)
    stored = session.stored
    assert session.logout() is True
    assert store.load(metadata.issuer, cli_client.client_id) is None
    refused = httpx.post(
        metadata.token_endpoint,
        data={
            "grant_type": "refresh_token",
            "refresh_token": stored.refresh_token,
            "client_id": cli_client.client_id,
        },
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    session.close()


def test_a_dead_refresh_token_says_sign_in_again(
    metadata: ServerMetadata, cli_client: Registered, store: FileStore, home: Path,
    browser: Browser,
) -> None:  # fmt: skip
    session = sign_in(metadata, cli_client, store, home, browser)
    httpx.post(
        metadata.revocation_endpoint or "",
        data={"token": session.stored.refresh_token, "client_id": cli_client.client_id},
    )
    session.tokens.forget()
    with pytest.raises(SessionExpired, match="invalid_grant") as expired:
        session.access_token()
    assert session.stored.refresh_token not in str(expired.value)
    session.close()


def rewrite(name: str, value: str | None) -> Any:
    """A redirect with one parameter replaced (or removed, for None)."""

    def tamper(url: str) -> str:
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
        return urlunsplit(parts._replace(query=urlencode(query)))

    return tamper


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("iss", "https://evil.example", "another issuer"),
        ("iss", None, "has no iss"),
        ("code", "a-forged-code", "invalid_grant"),
    ],
)
def test_a_tampered_callback_is_refused_and_nothing_is_stored(
    metadata: ServerMetadata, cli_client: Registered, store: FileStore, home: Path,
    alice: str, name: str, value: str | None, message: str,
) -> None:  # fmt: skip
    assert metadata.iss_parameter_supported
    with pytest.raises(ClientError, match=message):
        sign_in(metadata, cli_client, store, home, Browser(rewrite(name, value)))
    assert not (home / "sessions").exists() or not os.listdir(home / "sessions")


@pytest.mark.parametrize("value", ["forged-state", None])
def test_a_callback_with_another_state_is_refused_by_the_listener_and_nothing_is_stored(
    metadata: ServerMetadata, cli_client: Registered, store: FileStore, home: Path,
    alice: str, value: str | None,
) -> None:  # fmt: skip
    browser = Browser(rewrite("state", value))
    with pytest.raises(LoginError, match="no answer from the browser"):
        sign_in(metadata, cli_client, store, home, browser, timeout=0.3)
    assert browser.callback is not None and browser.callback.status_code == 400
    assert store.load(metadata.issuer, cli_client.client_id) is None


def test_an_error_redirect_is_a_clear_error(
    metadata: ServerMetadata, cli_client: Registered, store: FileStore, home: Path, alice: str
) -> None:
    def deny(url: str) -> str:
        query = parse_qs(urlsplit(url).query)
        return urlunsplit(urlsplit(url)._replace(query=urlencode({
            "error": "access_denied", "state": query["state"][0], "iss": metadata.issuer
        })))  # fmt: skip

    with pytest.raises(LoginError, match="refused the sign-in: access_denied"):
        sign_in(metadata, cli_client, store, home, Browser(deny))
    assert store.load(metadata.issuer, cli_client.client_id) is None


def test_a_tampered_nonce_fails_the_id_token(
    metadata: ServerMetadata, cli_client: Registered, store: FileStore, home: Path, alice: str
) -> None:
    def other_nonce(url: str) -> bool:
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        query["nonce"] = "not-the-nonce-of-this-sign-in"
        return Browser()(urlunsplit(parts._replace(query=urlencode(query))))

    with pytest.raises(IdTokenError, match="nonce"):
        sign_in(metadata, cli_client, store, home, other_nonce)
    assert store.load(metadata.issuer, cli_client.client_id) is None


def test_no_browser_and_no_device_endpoint_is_a_clear_error(
    server: ServerThread, metadata: ServerMetadata, cli_client: Registered, store: FileStore,
    home: Path,
) -> None:  # fmt: skip
    without_device = ServerMetadata(**{**metadata.__dict__, "device_authorization_endpoint": None})
    with pytest.raises(LoginError, match="no browser"):
        sign_in(without_device, cli_client, store, home, lambda url: False)


def test_session_auth_replaces_a_revoked_access_token_once(
    metadata: ServerMetadata, cli_client: Registered, store: FileStore, home: Path,
    browser: Browser,
) -> None:  # fmt: skip
    session = sign_in(metadata, cli_client, store, home, browser)
    userinfo = metadata.userinfo_endpoint or ""
    statuses: list[int] = []

    def seen(response: httpx.Response) -> None:
        statuses.append(response.status_code)

    with httpx.Client(auth=session.auth(), event_hooks={"response": [seen]}) as api:
        assert api.get(userinfo).status_code == 200
        revoked = session.access_token().value
        httpx.post(metadata.revocation_endpoint or "",
                   data={"token": revoked, "client_id": cli_client.client_id})  # fmt: skip
        assert api.get(userinfo).status_code == 200
    assert statuses == [200, 401, 200] and session.refreshes == 1
    assert session.access_token().value != revoked

    httpx.post(metadata.revocation_endpoint or "",
               data={"token": session.access_token().value,
                     "client_id": cli_client.client_id})  # fmt: skip

    async def async_call() -> int:
        async with httpx.AsyncClient(auth=session.auth()) as api:
            return (await api.get(userinfo)).status_code

    assert asyncio.run(async_call()) == 200 and session.refreshes == 2
    session.close()
