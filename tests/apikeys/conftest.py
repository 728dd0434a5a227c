"""HTTP fixtures for API keys: the protocol suite's server and client registration."""

from __future__ import annotations

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
    web_app,
)
from tokensmith.oauth.clients import NewClient


def client_token(http: httpx.Client, client: Registered, scope: str) -> str:
    assert client.secret is not None
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(client.client_id, client.secret),
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
def admin_client(register: Registrar) -> Registered:
    return register(
        NewClient(
            "console",
            grant_types=("client_credentials",),
            scope="tokensmith:admin tokensmith:leaks other",
        )
    )


@pytest.fixture
def admin_token(http: httpx.Client, admin_client: Registered) -> str:
    return client_token(http, admin_client, "tokensmith:admin")
