"""The BFF's issuer calls read at most a bounded answer: a userinfo endpoint that never stops
talking costs its limit, not the whole body (client/bounded.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from tokensmith.bff.oauth import IssuerClient, IssuerError
from tokensmith.core.clock import SystemClock

ISSUER = "https://auth.example.com"
METADATA = {
    "issuer": ISSUER,
    "authorization_endpoint": ISSUER + "/authorize",
    "token_endpoint": ISSUER + "/token",
    "jwks_uri": ISSUER + "/jwks",
    "userinfo_endpoint": ISSUER + "/userinfo",
    "revocation_endpoint": ISSUER + "/revoke",
}


class Endless(httpx.AsyncByteStream):
    """A body that never ends (up to 1 GiB), counting what was read of it."""

    def __init__(self, start: bytes) -> None:
        self.start, self.sent = start, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.start
        for _ in range(16 * 1024):
            self.sent += 65536
            yield b" " * 65536


def test_an_endless_userinfo_answer_is_read_only_up_to_its_limit() -> None:
    body = Endless(b'{"sub": "alice", "name": "')

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/.well-known/"):
            return httpx.Response(200, content=json.dumps(METADATA).encode())
        return httpx.Response(200, stream=body)

    async def run() -> None:
        http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        issuer = IssuerClient(ISSUER, "bff", "secret", SystemClock(), client=http)
        try:
            with pytest.raises(IssuerError, match="not a JSON object"):
                await issuer.userinfo("an-access-token", "alice")
        finally:
            await http.aclose()

    asyncio.run(run())
    assert body.sent <= 128 * 1024
