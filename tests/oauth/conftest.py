"""A running server and a way to register clients on it, for the protocol tests."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support import OFFERED, ServerThread, reserved_port, seed_migrated_sqlite
from tokensmith.core.secrets import keyed_hash
from tokensmith.oauth.clients import NewClient, generate_client_id, generate_client_secret
from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings


@dataclass(frozen=True)
class Registered:
    client_id: str
    secret: str | None


@pytest.fixture
def port() -> Iterator[int]:
    """Held by this process until the test's ServerThread listens on it."""
    with reserved_port() as number:
        yield number


@pytest.fixture
def settings(settings: Settings, port: int) -> Settings:
    """The issuer is where this test's server listens, so discovery URLs can be followed."""
    return settings.model_copy(update={"issuer": f"http://127.0.0.1:{port}"})


@pytest.fixture
def server(settings: Settings, port: int) -> Iterator[ServerThread]:
    seed_migrated_sqlite(settings)  # the schema as the server's first start would make it
    with ServerThread(settings, port=port) as running:
        yield running


@pytest.fixture
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield client


class Registrar:
    """Registers clients straight into the server's database (what `clients create` does)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, request: NewClient) -> Registered:
        return asyncio.run(self._add(request))

    async def _add(self, request: NewClient) -> Registered:
        services = await open_services(self.settings)
        try:
            secret = None if request.is_public else generate_client_secret()
            digest = keyed_hash(services.master.pepper, secret) if secret else None
            client = request.validated(
                generate_client_id(), digest, services.clock.now(), offered=OFFERED
            )
            await services.clients.add(client)
            return Registered(client.client_id, secret)
        finally:
            await services.close()


@pytest.fixture
def register(settings: Settings, server: ServerThread) -> Registrar:
    return Registrar(settings)


@pytest.fixture
def machine(register: Registrar) -> Registered:
    return register(
        NewClient(
            "worker",
            grant_types=("client_credentials",),
            scope="api:read api:write",
            allowed_resources=("https://orders.example.com", "https://billing.example.com"),
        )
    )


@functools.cache
def alice_password_hash() -> str:
    """Alice's Argon2 hash, computed once per test process: a hash costs a tenth of a second by
    design, and each test's database is its own (the server still verifies every login)."""
    from tokensmith.accounts.users import hash_password

    return hash_password("correct horse battery")


@pytest.fixture
def alice(settings: Settings, server: ServerThread) -> str:
    """A user who can log in: alice / correct horse battery."""

    async def add() -> str:
        from tokensmith.accounts.users import User, new_user_id

        services = await open_services(settings)
        try:
            now = services.clock.now()
            user = User(
                new_user_id(),
                "alice",
                "alice@example.com",
                alice_password_hash(),
                now - 10,
                now - 10,
            )
            await services.users.add(user)
            return user.user_id
        finally:
            await services.close()

    return asyncio.run(add())


@pytest.fixture
def web_app(register: Registrar) -> Registered:
    """A confidential web application using the code flow with refresh tokens."""
    return register(
        NewClient(
            "Web App",
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=("https://app.example.com/callback",),
            scope="openid profile email api:read",
        )
    )


@pytest.fixture
def native_app(register: Registrar) -> Registered:
    """A public native app with a loopback redirect (RFC 8252)."""
    return register(
        NewClient(
            "CLI",
            is_public=True,
            redirect_uris=("http://127.0.0.1/callback",),
            scope="openid api:read",
        )
    )


def admin_token(http: httpx.Client, register: Registrar) -> str:
    """A fresh access token with the tokensmith:admin scope, for a test that needs the admin API."""
    admin = register(
        NewClient("console", grant_types=("client_credentials",), scope="tokensmith:admin")
    )
    assert admin.secret is not None
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "tokensmith:admin"},
        auth=(admin.client_id, admin.secret),
    )
    return str(response.json()["access_token"])
