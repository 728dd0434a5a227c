"""DPoP end to end (RFC 9449): the client kit against the real server, calling an API behind the
real guard. ``login`` and ``ClientCredentialsAuth`` bind their tokens to a key of their own, the
session's key survives a restart, and the guard accepts the tokens only with the kit's proofs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.client.conftest import Browser, Registered, Registrar
from tests.guard.servers import asgi_server
from tests.support import ServerThread, listening_socket
from tokensmith.client import ClientCredentialsAuth, FileStore, ServerMetadata, Session, login
from tokensmith.guard import DpopPolicy, Guard
from tokensmith.guard.asgi import GuardMiddleware, principal_of
from tokensmith.oauth.clients import NewClient

API = "https://orders.example.com"


@pytest.fixture
def api(server: ServerThread) -> Iterator[str]:
    """An API behind the guard, for the server's tokens; its proofs name its own address."""
    sock = listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    guard = Guard.for_issuer(
        server.base_url, audience=[server.base_url, API], dpop=DpopPolicy(public_url=base)
    )

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        principal = principal_of(scope)
        body = f'{{"sub": "{principal.subject}", "jkt": "{principal.dpop_jkt}"}}'.encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    with asgi_server(GuardMiddleware(inner, guard, scopes=["api:read"]), sock=sock):
        yield base


def test_metadata_offers_dpop(metadata: ServerMetadata) -> None:
    assert "ES256" in metadata.dpop_algs


def test_login_binds_the_session_and_calls_the_api(
    metadata: ServerMetadata, cli_client: Registered, store: FileStore, home: Path,
    browser: Browser, api: str,
) -> None:  # fmt: skip
    session = login(
        metadata, cli_client.client_id, store, scope="openid api:read", opener=browser, home=home
    )
    with session:
        assert session.dpop is not None
        token = session.access_token()
        assert token.token_type == "DPoP"
        response = httpx.get(api + "/orders", auth=session.auth())
        assert response.status_code == 200, response.text
        assert response.json()["jkt"] == session.dpop.jkt
        # As Bearer, the stolen token is useless.
        stolen = httpx.get(api + "/orders", headers={"authorization": f"Bearer {token.value}"})
        assert stolen.status_code == 401
        jkt = session.dpop.jkt
    # Another process: the session, its key and its bound refresh token come from the store.
    with Session.load(metadata, cli_client.client_id, store, home=home) as restarted:
        assert restarted.dpop is not None and restarted.dpop.jkt == jkt
        response = httpx.get(api + "/orders", auth=restarted.auth())
        assert response.status_code == 200, response.text
        assert restarted.refreshes == 1


def test_client_credentials_with_dpop(server: ServerThread, register: Registrar, api: str) -> None:
    client = register(
        NewClient("worker", grant_types=("client_credentials",), scope="api:read",
                  allowed_resources=(API,))
    )  # fmt: skip
    with ClientCredentialsAuth.for_issuer(
        server.base_url, client.client_id, client_secret=client.secret, scope="api:read"
    ) as auth:
        assert auth.dpop is not None
        response = httpx.get(api + "/orders", auth=auth)
        assert response.status_code == 200, response.text
        assert auth.tokens.current is not None and auth.tokens.current.token_type == "DPoP"
        assert response.json()["jkt"] == auth.dpop.jkt
    with ClientCredentialsAuth.for_issuer(
        server.base_url, client.client_id, client_secret=client.secret, dpop=False
    ) as plain:
        assert httpx.get(api + "/orders", auth=plain).status_code == 200
