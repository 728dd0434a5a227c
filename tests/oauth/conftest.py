"""A running server and a way to register clients on it, for the protocol tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support import ServerThread, free_port
from tokensmith.core.secrets import keyed_hash
from tokensmith.oauth.clients import NewClient, generate_client_id, generate_client_secret
from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings


@dataclass(frozen=True)
class Registered:
    client_id: str
    secret: str | None


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings(settings: Settings, port: int) -> Settings:
    """The issuer is where this test's server listens, so discovery URLs can be followed."""
    return settings.model_copy(update={"issuer": f"http://127.0.0.1:{port}"})


@pytest.fixture
def server(settings: Settings, port: int) -> Iterator[ServerThread]:
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
            client = request.validated(generate_client_id(), digest, services.clock.now())
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
