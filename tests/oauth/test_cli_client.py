"""The built-in public client of the ``tokensmith`` command (runtime/cli_client.py), on a real
server: it exists after the first start, signs in with the code flow (PKCE S256, any loopback
port) and the device grant, its refresh tokens rotate, and TOKENSMITH_CLI_CLIENT removes it."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import httpx
import pytest

from tests.oauth.browser import Browser
from tests.support import ServerThread, approve_device_code
from tokensmith.oauth.clients import Client
from tokensmith.oauth.device_authorization import DEVICE_CODE_GRANT
from tokensmith.oauth.pkce import s256
from tokensmith.runtime.cli_client import CLI_CLIENT_ID
from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings

VERIFIER = "cli-verifier-" + "x" * 40


def stored_cli_client(settings: Settings) -> Client | None:
    async def read() -> Client | None:
        services = await open_services(settings)
        try:
            return await services.clients.get(CLI_CLIENT_ID)
        finally:
            await services.close()

    return asyncio.run(read())


def authorize_url(server: ServerThread, port: int, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": CLI_CLIENT_ID,
        "redirect_uri": f"http://127.0.0.1:{port}/callback",
        "scope": "openid profile",
        "state": "s-1",
        **extra,
    }
    return f"{server.base_url}/authorize?{urlencode(params)}"


def test_every_server_has_it_after_its_first_start(
    server: ServerThread, settings: Settings
) -> None:
    client = stored_cli_client(settings)
    assert client is not None
    assert client.is_public and client.auth_method == "none" and client.secret_hash is None
    assert set(client.grant_types) == {"authorization_code", "refresh_token", DEVICE_CODE_GRANT}
    assert client.redirect_uris == ("http://127.0.0.1/callback",)
    assert client.scopes == {"openid", "profile", "email"}
    # Made once: a second start finds it and changes nothing.
    assert stored_cli_client(settings) == client


@pytest.mark.parametrize(
    "extra",
    [{}, {"code_challenge": s256(VERIFIER), "code_challenge_method": "plain"}],
)
def test_it_cannot_sign_in_without_pkce_s256(
    server: ServerThread, alice: str, extra: dict[str, str]
) -> None:
    response = httpx.get(authorize_url(server, 54321, **extra), follow_redirects=False)
    assert response.status_code == 303
    assert "error=invalid_request" in response.headers["location"]
    assert response.headers["location"].startswith("http://127.0.0.1:54321/callback?")


def test_it_signs_in_on_any_loopback_port_and_its_refresh_token_rotates(
    server: ServerThread, http: httpx.Client, alice: str
) -> None:
    url = authorize_url(server, 50123, code_challenge=s256(VERIFIER), code_challenge_method="S256")
    outcome = Browser(server.base_url).authorize(url)
    assert outcome.location.startswith("http://127.0.0.1:50123/callback?")
    tokens = http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "client_id": CLI_CLIENT_ID,
            "code": outcome.query["code"],
            "redirect_uri": "http://127.0.0.1:50123/callback",
            "code_verifier": VERIFIER,
        },
    ).json()
    first = tokens["refresh_token"]
    refreshed = http.post(
        "/token",
        data={"grant_type": "refresh_token", "client_id": CLI_CLIENT_ID, "refresh_token": first},
    )
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()["refresh_token"]
    assert second != first
    moved_on = http.post(
        "/token",
        data={"grant_type": "refresh_token", "client_id": CLI_CLIENT_ID, "refresh_token": second},
    )
    assert moved_on.status_code == 200, moved_on.text
    # The first token's successor is used: presenting it again is reuse, not a duplicate.
    reused = http.post(
        "/token",
        data={"grant_type": "refresh_token", "client_id": CLI_CLIENT_ID, "refresh_token": first},
    )
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


def test_it_signs_in_with_the_device_grant(
    server: ServerThread, http: httpx.Client, alice: str
) -> None:
    body = http.post(
        "/device_authorization", data={"client_id": CLI_CLIENT_ID, "scope": "openid"}
    ).json()
    approve_device_code(server.base_url, body["user_code"], "alice", "correct horse battery")
    tokens = http.post(
        "/token",
        data={
            "grant_type": DEVICE_CODE_GRANT,
            "client_id": CLI_CLIENT_ID,
            "device_code": body["device_code"],
        },
    ).json()
    assert tokens["refresh_token"].startswith("tsrt_") and "id_token" in tokens


class TestSwitchedOff:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"cli_client": False})

    def test_it_is_not_made_and_one_made_before_is_removed(
        self, server: ServerThread, settings: Settings
    ) -> None:
        assert stored_cli_client(settings) is None
        assert stored_cli_client(settings.model_copy(update={"cli_client": True})) is not None
        assert stored_cli_client(settings) is None


class TestWithoutTheDeviceGrant:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"grant_types": "authorization_code refresh_token"})

    def test_it_has_only_the_grants_on_offer_and_the_device_endpoints_are_gone(
        self, server: ServerThread, http: httpx.Client, settings: Settings
    ) -> None:
        client = stored_cli_client(settings)
        assert client is not None
        assert set(client.grant_types) == {"authorization_code", "refresh_token"}
        metadata = http.get("/.well-known/openid-configuration").json()
        assert "device_authorization_endpoint" not in metadata
        assert DEVICE_CODE_GRANT not in metadata["grant_types_supported"]
        assert http.post("/device_authorization", data={"client_id": "x"}).status_code == 404
        assert http.get("/device").status_code == 404


def test_its_consent_is_asked_every_time_and_never_given_silently(
    server: ServerThread, alice: str
) -> None:
    """RFC 8252 §8.6: any app on the machine can listen on a loopback port, so a link naming
    this public client must not turn a remembered consent into a code without a click, nor
    answer prompt=none with one."""
    pkce = {"code_challenge": s256(VERIFIER), "code_challenge_method": "S256"}
    browser = Browser(server.base_url)
    first = browser.authorize(authorize_url(server, 50123, **pkce))  # signs in, consents
    assert "code" in first.query
    again = browser.open(authorize_url(server, 50124, **pkce))
    assert again.status_code == 200 and 'action="/consent"' in again.text
    assert "Tokensmith CLI" in again.text
    silent = browser.open(authorize_url(server, 50125, prompt="none", **pkce))
    assert silent.status_code == 303
    assert "error=consent_required" in silent.headers["location"]
    assert "code=" not in silent.headers["location"]
