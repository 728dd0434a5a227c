"""The BFF's calls to the issuer (bff/oauth.py) against a stub issuer over real HTTP: metadata
that names another issuer, an issuer that is down, and a refresh while it is down."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.guard.servers import StubServer
from tests.support import refused_port
from tokensmith.bff.oauth import IssuerClient, IssuerError, IssuerUnavailable
from tokensmith.bff.refresh import LoginRequired, Refresher
from tokensmith.bff.sealing import Sealer
from tokensmith.bff.sessions import SessionRecord, Sessions
from tokensmith.bff.stores import SqliteStore
from tokensmith.core.clock import FrozenClock, SystemClock
from tokensmith.core.sealing import MasterKey, generate_master_key

pytestmark = pytest.mark.anyio


def metadata(base: str, **overrides: Any) -> dict[str, Any]:
    return {
        "issuer": base,
        "authorization_endpoint": base + "/authorize",
        "token_endpoint": base + "/token",
        "jwks_uri": base + "/jwks",
        "revocation_endpoint": base + "/revoke",
        "authorization_response_iss_parameter_supported": True,
        **overrides,
    }


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as running:
        running.routes["/.well-known/openid-configuration"] = (200, {}, metadata(running.base_url))
        yield running


async def test_metadata_naming_another_issuer_is_refused(stub: StubServer) -> None:
    stub.routes["/.well-known/openid-configuration"] = (
        200,
        {},
        metadata(stub.base_url, issuer="https://evil.example"),
    )
    client = IssuerClient(stub.base_url, "c", "s", SystemClock())
    with pytest.raises(IssuerError) as raised:
        await client.metadata()
    assert raised.value.error == "invalid_issuer"
    await client.aclose()


@pytest.mark.parametrize("missing", ["authorization_endpoint", "token_endpoint", "jwks_uri"])
async def test_metadata_without_an_endpoint_is_refused(stub: StubServer, missing: str) -> None:
    stub.routes["/.well-known/openid-configuration"] = (
        200,
        {},
        metadata(stub.base_url, **{missing: None}),
    )
    client = IssuerClient(stub.base_url, "c", "s", SystemClock())
    with pytest.raises(IssuerError):
        await client.metadata()
    await client.aclose()


def test_a_plain_http_issuer_off_loopback_is_refused() -> None:
    with pytest.raises(ValueError, match="https"):
        IssuerClient("http://id.example", "c", "s", SystemClock())


async def test_an_issuer_that_is_down_is_unavailable_not_a_crash() -> None:
    client = IssuerClient(f"http://127.0.0.1:{refused_port()}", "c", "s", SystemClock())
    with pytest.raises(IssuerUnavailable):
        await client.metadata()
    await client.aclose()


async def test_the_token_requests_use_client_secret_basic(stub: StubServer) -> None:
    stub.routes["/token"] = (
        200,
        {},
        {"access_token": "at", "expires_in": 60, "token_type": "Bearer"},
    )
    client = IssuerClient(stub.base_url, "client-1", "secret-1", SystemClock())
    tokens = await client.refresh("rt-1")
    assert tokens.access_token == "at" and "at" not in repr(tokens)
    path, headers, body = stub.requests[-1]
    assert path == "/token"
    assert headers["authorization"] == "Basic Y2xpZW50LTE6c2VjcmV0LTE="
    assert b"secret-1" not in body and b"client_secret" not in body
    odd = IssuerClient(stub.base_url, "a:b", "s+c/r t", SystemClock())  # RFC 6749 §2.3.1
    await odd.refresh("rt-1")
    assert (
        stub.requests[-1][1]["authorization"]
        == "Basic " + base64.b64encode(b"a%3Ab:s%2Bc%2Fr+t").decode()
    )
    await odd.aclose()
    stub.routes["/token"] = (400, {}, {"error": "invalid_grant"})
    with pytest.raises(IssuerError) as raised:
        await client.refresh("rt-1")
    assert raised.value.error == "invalid_grant"
    stub.routes["/token"] = (503, {}, "down")
    with pytest.raises(IssuerUnavailable):
        await client.refresh("rt-1")
    await client.aclose()


async def test_a_refresh_while_the_issuer_is_down(stub: StubServer, tmp_path: Path) -> None:
    """A still-valid token keeps working; without one the answer is 'unavailable', and the
    session is kept for when the issuer is back. invalid_grant ends it."""
    clock = FrozenClock(time.time())
    sessions = Sessions(
        SqliteStore(tmp_path / "s.db"),
        Sealer(MasterKey.from_text(generate_master_key())),
        clock,
        idle=600,
        absolute=3600,
        login_timeout=60,
    )
    client = IssuerClient(stub.base_url, "c", "s", clock)
    refresher = Refresher(sessions, client, clock, refresh_before=30)
    now = clock.now()
    _, key = await sessions.create(SessionRecord("sub", None, None, "at", "rt", now + 10, now, now))
    record = await sessions.load(key)
    assert record is not None
    stub.routes["/token"] = (503, {}, "down")
    assert (await refresher.fresh(key, record)).access_token == "at"  # due, but still valid
    clock.advance(11)
    with pytest.raises(IssuerUnavailable):
        await refresher.fresh(key, record)
    assert await sessions.load(key) is not None
    stub.routes["/token"] = (400, {}, {"error": "invalid_grant"})
    with pytest.raises(LoginRequired):
        await refresher.fresh(key, record)
    assert await sessions.load(key) is None
    await client.aclose()
    await sessions.store.aclose()


async def test_unusable_answers_are_refused_not_a_crash(stub: StubServer) -> None:
    """A token answer without a Bearer access token or with a text expires_in is server_error;
    metadata answered 5xx is 'unavailable' (the kit's discovery), a 4xx untrusted."""
    client = IssuerClient(stub.base_url, "c", "s", SystemClock())
    for answer in (
        {"access_token": "at", "expires_in": "60", "token_type": "Bearer"},
        {"access_token": "at", "expires_in": 60, "token_type": "DPoP"},
        {"expires_in": 60, "token_type": "Bearer"},
    ):
        stub.routes["/token"] = (200, {}, answer)
        with pytest.raises(IssuerError) as raised:
            await client.refresh("rt-1")
        assert raised.value.error == "server_error"
        assert not isinstance(raised.value, IssuerUnavailable)
    await client.aclose()
    stub.routes["/.well-known/openid-configuration"] = (502, {}, "bad gateway")
    failing = IssuerClient(stub.base_url, "c", "s", SystemClock())
    with pytest.raises(IssuerUnavailable):
        await failing.metadata()
    stub.routes["/.well-known/openid-configuration"] = (403, {}, {"error": "forbidden"})
    with pytest.raises(IssuerError) as untrusted:
        await failing.metadata()
    assert untrusted.value.error == "invalid_issuer"
    await failing.aclose()
