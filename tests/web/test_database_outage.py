"""A database that goes away while serving: /readyz says 503, then recovers by itself."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.support import (
    POSTGRES_URL,
    ServerThread,
    TcpProxy,
    add_machine_client,
    postgres_schema,
)
from tokensmith.core.sealing import generate_master_key
from tokensmith.persistence.repositories.clients import CLIENT_CACHE_SECONDS
from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings, load_settings


def wait_for_status(url: str, status: int, timeout: float = 20) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(url, timeout=10)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def register_machine(settings: Settings) -> tuple[str, str]:
    """A client_credentials client, registered straight into the database."""

    async def add() -> tuple[str, str]:
        services = await open_services(settings)
        try:
            return await add_machine_client(services, "outage", scope="")
        finally:
            await services.close()

    return asyncio.run(add())


@pytest.mark.usefixtures("postgres")
def test_readiness_follows_the_database(tmp_path: Path) -> None:
    proxy = TcpProxy(5432)
    proxy.start()
    try:
        with postgres_schema() as schema:
            url = POSTGRES_URL.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
            settings = load_settings(
                var_dir=tmp_path / "var",
                database_url=url,
                database_schema=schema,
                master_key=generate_master_key(),
                readiness_timeout=1.0,
            )
            with ServerThread(settings) as server:
                ready = server.base_url + "/readyz"
                assert httpx.get(ready).status_code == 200

                client = register_machine(settings)
                token_url = server.base_url + "/token"
                form = {"grant_type": "client_credentials"}
                assert httpx.post(token_url, data=form, auth=client).status_code == 200

                proxy.stop()
                down = wait_for_status(ready, 503)
                assert down.status_code == 503
                assert down.json()["checks"]["database"] == "unreachable"
                assert down.headers["retry-after"] == "5"
                # The process stays alive and keeps answering what needs no database.
                assert httpx.get(server.base_url + "/healthz").status_code == 200
                assert httpx.get(server.base_url + "/jwks").status_code == 200
                # No token without its record: a token request fails cleanly with 503 (once
                # the client read just before the outage has left the client cache).
                time.sleep(CLIENT_CACHE_SECONDS)
                refused = httpx.post(token_url, data=form, auth=client, timeout=30)
                assert refused.status_code == 503
                assert refused.json()["error"] == "temporarily_unavailable"
                assert "access_token" not in refused.text

                proxy.start()
                assert wait_for_status(ready, 200).status_code == 200
                assert httpx.post(token_url, data=form, auth=client).status_code == 200
    finally:
        proxy.shutdown()
