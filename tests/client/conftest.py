"""The client kit against a real server: the protocol suite's server and registration, a CLI
client like the built-in ``tokensmith-cli`` (public, PKCE, loopback redirect), a private client
home, and a browser that walks Tokensmith's real login and consent pages with httpx."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.oauth.conftest import (  # noqa: F401  (fixtures, found by name)
    Registered,
    Registrar,
    alice,
    http,
    port,
    register,
    server,
    settings,
)
from tests.support import ServerThread
from tokensmith.client import FileStore, ServerMetadata, discover
from tokensmith.oauth.clients import NewClient

_FIELD = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


@pytest.fixture
def cli_client(register: Registrar) -> Registered:
    """What the server's built-in tokensmith-cli client is: public, loopback, refreshable."""
    return register(
        NewClient(
            "Tokensmith CLI",
            is_public=True,
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=("http://127.0.0.1/callback",),
            scope="openid profile email api:read",
        )
    )


@pytest.fixture
def metadata(server: ServerThread) -> ServerMetadata:
    return discover(server.base_url)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "client-home"


@pytest.fixture
def store(home: Path) -> FileStore:
    return FileStore(home / "sessions")


class Browser:
    """A person at a browser: opens the authorization URL, logs in as alice, consents, and
    follows the redirect to the app's loopback listener. ``tamper`` may rewrite that redirect."""

    def __init__(self, tamper: Callable[[str], str] | None = None) -> None:
        self.tamper = tamper or (lambda url: url)
        self.callback: httpx.Response | None = None
        self.opened: list[str] = []

    def __call__(self, url: str) -> bool:
        self.opened.append(url)
        with httpx.Client(timeout=10) as web:
            page = web.get(url)
            if 'action="/login"' in page.text:
                page = self._submit(web, page, "/login", username="alice",
                                    password="correct horse battery")  # fmt: skip
            if 'action="/consent"' in page.text:
                page = self._submit(web, page, "/consent", decision="allow")
            assert page.status_code == 303, (page.status_code, page.text[:300])
            self.callback = web.get(self.tamper(page.headers["location"]))
        return True

    @staticmethod
    def _submit(web: httpx.Client, page: httpx.Response, action: str, **fields: str) -> Any:
        hidden = dict(_FIELD.findall(page.text))
        origin = f"{page.url.scheme}://{page.url.netloc.decode()}"
        return web.post(origin + action, data={**hidden, **fields})


@pytest.fixture
def browser(alice: str) -> Browser:
    return Browser()
