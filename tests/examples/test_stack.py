"""The example stack end to end: client credentials at a real Tokensmith, then gateway, then the
guarded orders service, all started as the README says (one command for service + gateway).
The service accepts only transaction tokens: the gateway's own (mint mode) or Tokensmith's
(exchange mode); and a service holding an API key trades it for a 5-minute JWT at /token."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.oauth.conftest import Registered, Registrar, port, register, server
from tests.support import REPO, ServerThread, free_port
from tokensmith.apikeys.lifecycle import NewApiKey
from tokensmith.oauth.clients import NewClient
from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings

__all__ = ["port", "register", "server"]  # fixtures borrowed from the protocol tests


TRUST = "https://orders.internal"  # examples/gateway.toml's trust domain
EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
Launch = Callable[..., str]


@pytest.fixture
def settings(settings: Settings, port: int) -> Settings:
    """The protocol tests' server (its issuer where it listens), issuing transaction tokens for
    the example's trust domain (exchange mode), re-reading API keys on every use."""
    return settings.model_copy(
        update={
            "issuer": f"http://127.0.0.1:{port}",
            "txn_token_audience": TRUST,
            "api_key_max_staleness": 0.0,
        }
    )


@pytest.fixture
def launch(server: ServerThread, register: Registrar, tmp_path: Path) -> Iterator[Launch]:
    """Starts examples/stack.py on examples/gateway.toml, with the mode asked for."""
    started: list[tuple[subprocess.Popen[bytes], Any]] = []

    def start(mode: str = "mint") -> str:
        gateway_client = register(
            NewClient(
                "gateway",
                may_vouch_client_ip=True,
                grant_types=(EXCHANGE_GRANT,),
                # It trades the tokens its callers bring (for Tokensmith's default audience)
                # and their API keys for transaction tokens.
                token_exchange={
                    "accept_audiences": [server.base_url],
                    "subject_types": ["access_token", "api_key"],
                    "txn_tokens": True,
                },
            )
        )
        gateway_port, service_port = free_port(), free_port()
        text = (REPO / "examples" / "gateway.toml").read_text()
        text = (
            text.replace("http://127.0.0.1:8000", server.base_url)
            .replace("8080", str(gateway_port))
            .replace("9001", str(service_port))
            .replace("var/gateway-signing-key.pem", str(tmp_path / "key.pem"))
            .replace("introspection_cache_seconds = 1.0", "introspection_cache_seconds = 0.0")
            .replace('mode = "mint"', f'mode = "{mode}"')
            .replace("exchange_cache_seconds = 10", "exchange_cache_seconds = 0")
        )
        config = tmp_path / f"gateway-{mode}.toml"
        config.write_text(text)
        env = {
            **os.environ,
            "GATEWAY_CLIENT_ID": gateway_client.client_id,
            "GATEWAY_CLIENT_SECRET": gateway_client.secret or "",
        }
        log = (tmp_path / f"stack-{mode}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, str(REPO / "examples" / "stack.py"), "--config", str(config)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append((process, log))
        base = f"http://127.0.0.1:{gateway_port}"
        _wait(base + "/healthz", process)
        _wait(f"http://127.0.0.1:{service_port}/orders", process)
        return base

    try:
        yield start
    finally:
        for process, log in started:
            process.terminate()
            process.wait(timeout=15)
            log.close()
    for log_file in tmp_path.glob("stack-*.log"):
        assert "Traceback" not in log_file.read_text()


@pytest.fixture
def stack(launch: Launch) -> str:
    return launch("mint")


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the example stack exited"
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise TimeoutError(url)


def _token(server: ServerThread, client: Registered) -> str:
    response = httpx.post(
        server.base_url + "/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, client.secret or ""),
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_client_credentials_through_gateway_to_guarded_service(
    stack: str, server: ServerThread, register: Registrar
) -> None:
    worker = register(
        NewClient("worker", scope="orders:read orders:write", access_token_format="opaque")
    )
    reader = register(NewClient("reader", scope="orders:read"))  # JWT access tokens
    token = _token(server, worker)
    auth = {"authorization": f"Bearer {token}"}

    added = httpx.post(stack + "/orders", headers=auth)
    assert added.status_code == 201, added.text
    listed = httpx.get(stack + "/orders", headers=auth)
    assert listed.status_code == 200
    assert listed.json()["caller"] == worker.client_id
    assert listed.json()["orders"] == [{"id": 1, "owner": worker.client_id}]
    # What reached the service was a transaction token, one transaction per request.
    again = httpx.get(stack + "/orders", headers=auth).json()
    assert listed.json()["purp"] == again["purp"] == "orders:read"
    assert str(uuid.UUID(listed.json()["txn"])) == listed.json()["txn"] != again["txn"]

    read_only = {"authorization": f"Bearer {_token(server, reader)}"}
    assert httpx.get(stack + "/orders", headers=read_only).status_code == 200
    refused = httpx.post(stack + "/orders", headers=read_only)  # the service's own scope check
    assert refused.status_code == 403
    assert refused.json()["error"] == "insufficient_scope"

    assert httpx.get(stack + "/orders").status_code == 401
    revoked = httpx.post(
        server.base_url + "/revoke",
        data={"token": token},
        auth=(worker.client_id, worker.secret or ""),
    )
    assert revoked.status_code == 200
    after = httpx.get(stack + "/orders", headers=auth)
    assert after.status_code == 401
    assert after.json()["error"] == "invalid_token"


def test_exchange_mode_the_service_gets_tokensmiths_txn_tokens(
    launch: Launch, server: ServerThread, register: Registrar, settings: Settings
) -> None:
    stack = launch("exchange")
    worker = register(NewClient("worker", scope="orders:read orders:write"))
    auth = {"authorization": f"Bearer {_token(server, worker)}"}
    assert httpx.post(stack + "/orders", headers=auth).status_code == 201
    listed = httpx.get(stack + "/orders", headers=auth)
    assert listed.status_code == 200, listed.text
    assert listed.json()["caller"] == worker.client_id
    assert listed.json()["orders"] == [{"id": 1, "owner": worker.client_id}]
    # Tokensmith named the transaction and states the purpose (the credential's scope).
    assert listed.json()["txn"] and listed.json()["purp"] == "orders:read orders:write"
    # The gateway publishes no key of its own: the service trusts Tokensmith's JWKS.
    assert httpx.get(stack + "/.well-known/jwks.json").json() == {"keys": []}

    key = _api_key(settings, scope="orders:read")
    by_key = httpx.get(stack + "/orders", headers={"x-api-key": key})
    assert by_key.status_code == 200, by_key.text
    assert by_key.json()["caller"] == "team-orders"  # the key's owner
    assert httpx.post(stack + "/orders", headers={"x-api-key": key}).status_code == 403

    assert httpx.get(stack + "/orders", headers={"authorization": "Bearer nope"}).status_code == 401


def test_an_api_key_traded_for_a_five_minute_jwt_through_the_stack(
    stack: str, server: ServerThread, register: Registrar, settings: Settings
) -> None:
    exporter = register(
        NewClient(
            "exporter",
            grant_types=(EXCHANGE_GRANT,),
            token_exchange={"subject_types": ["api_key"]},
        )
    )
    key = _api_key(settings, scope="orders:read orders:write")
    response = httpx.post(
        server.base_url + "/token",
        data={
            "grant_type": EXCHANGE_GRANT,
            "subject_token": key,
            "subject_token_type": "urn:tokensmith:params:oauth:token-type:api-key",
            "scope": "orders:read",
        },
        auth=(exporter.client_id, exporter.secret or ""),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_in"] == 300 and body["token_type"] == "Bearer"
    token = body["access_token"]
    assert token.count(".") == 2  # a JWT any API verifies from the JWKS

    auth = {"authorization": f"Bearer {token}"}
    listed = httpx.get(stack + "/orders", headers=auth)
    assert listed.status_code == 200, listed.text
    assert listed.json()["caller"] == "team-orders" and listed.json()["scope"] == "orders:read"
    assert httpx.post(stack + "/orders", headers=auth).status_code == 403  # narrowed at /token
    # The key itself is no token at /token without the client's credentials.
    alone = httpx.post(
        server.base_url + "/token",
        data={
            "grant_type": EXCHANGE_GRANT,
            "subject_token": key,
            "subject_token_type": "urn:tokensmith:params:oauth:token-type:api-key",
        },
    )
    assert alone.status_code == 401 and alone.json()["error"] == "invalid_client"


def _api_key(settings: Settings, **fields: Any) -> str:
    async def create() -> str:
        services = await open_services(settings)
        try:
            new = NewApiKey(name="exporter", owner="team-orders", **fields)
            return (await services.key_manager.create(new, "test")).key
        finally:
            await services.close()

    return asyncio.run(create())
