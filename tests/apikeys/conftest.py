"""HTTP fixtures for API keys: the protocol suite's server, client registration, and a webhook
receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    web_app,
)
from tests.support import POLL_INTERVAL
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


WEBHOOK_SECRET = "webhook-test-secret-0123456789"


class Receiver:
    """A webhook endpoint on loopback that records what it receives and answers 204."""

    def __init__(self) -> None:
        # A 500 for the first message containing these bytes, whatever arrives before it.
        self.fail_once_on: bytes | None = None
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = 204
                if outer.fail_once_on is not None and outer.fail_once_on in body:
                    outer.fail_once_on, status = None, 500
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        # Port 0: bound and listening at once, so no other server can take the port.
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/security?token=s3cret"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, daemon=True
        ).start()

    def wait_for(self, count: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, self.received


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()
