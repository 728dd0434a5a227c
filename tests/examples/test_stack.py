"""The example stack end to end: client credentials at a real Tokensmith, then gateway, then the
guarded orders service, all started as the README says (one command for service + gateway)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.oauth.conftest import Registered, Registrar, port, register, server, settings
from tests.support import REPO, ServerThread, free_port
from tokensmith.oauth.clients import NewClient

__all__ = ["port", "register", "server", "settings"]  # fixtures borrowed from the protocol tests


@pytest.fixture
def stack(server: ServerThread, register: Registrar, tmp_path: Path) -> Iterator[str]:
    gateway_client = register(NewClient("gateway", may_vouch_client_ip=True))
    gateway_port, service_port = free_port(), free_port()
    text = (REPO / "examples" / "gateway.toml").read_text()
    text = (
        text.replace("http://127.0.0.1:8000", server.base_url)
        .replace("8080", str(gateway_port))
        .replace("9001", str(service_port))
        .replace("var/gateway-signing-key.pem", str(tmp_path / "key.pem"))
        .replace("introspection_cache_seconds = 1.0", "introspection_cache_seconds = 0.0")
    )
    config = tmp_path / "gateway.toml"
    config.write_text(text)
    env = {
        **os.environ,
        "GATEWAY_CLIENT_ID": gateway_client.client_id,
        "GATEWAY_CLIENT_SECRET": gateway_client.secret or "",
    }
    log = (tmp_path / "stack.log").open("w")
    process = subprocess.Popen(
        [sys.executable, str(REPO / "examples" / "stack.py"), "--config", str(config)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{gateway_port}"
    try:
        _wait(base + "/healthz", process)
        _wait(f"http://127.0.0.1:{service_port}/orders", process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()
    assert "Traceback" not in (tmp_path / "stack.log").read_text()


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
