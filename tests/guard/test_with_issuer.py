"""The guard against a real Tokensmith server: JWT access tokens, opaque tokens by
introspection (revocation bound, outage), and API keys against a stub verify endpoint."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.guard.servers import StubServer
from tests.oauth.conftest import Registered, Registrar, port, register, server, settings
from tests.support import ServerThread, free_port
from tokensmith.apikeys.format import generate_api_key
from tokensmith.core.clock import FrozenClock
from tokensmith.guard import (
    Credential,
    ForbiddenSource,
    Guard,
    Introspector,
    InvalidToken,
    RateLimited,
    RemoteApiKeyVerifier,
    ServiceUnavailable,
)
from tokensmith.oauth.clients import NewClient

__all__ = ["port", "register", "server", "settings"]  # fixtures borrowed from the protocol tests

RESOURCE = "https://orders.example.com"


def client_token(base_url: str, client: Registered, **form: str) -> str:
    assert client.secret is not None
    response = httpx.post(
        base_url + "/token",
        data={"grant_type": "client_credentials", **form},
        auth=(client.client_id, client.secret),
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> Credential:
    return Credential("bearer", token)


def test_jwt_from_the_issuer(server: ServerThread, register: Registrar) -> None:
    worker = register(
        NewClient("w", scope="orders:read orders:write", allowed_resources=(RESOURCE,))
    )
    guard = Guard.for_issuer(server.base_url, audience=RESOURCE)
    token = client_token(server.base_url, worker, scope="orders:read", resource=RESOURCE)
    principal = asyncio.run(guard.authenticate(bearer(token)))
    assert principal.subject == worker.client_id
    assert principal.client_id == worker.client_id
    assert principal.scopes == {"orders:read"}
    assert principal.issuer == server.base_url
    assert principal.kind == "jwt"
    # A token for the issuer's own default audience is not ours, and the refusal says how to
    # ask for one that is; asking that way is accepted.
    other = client_token(server.base_url, worker, scope="orders:read")
    with pytest.raises(InvalidToken) as refused:
        asyncio.run(guard.authenticate(bearer(other)))
    assert refused.value.description == (
        f"the access token's audience is '{server.base_url}'; this API accepts '{RESOURCE}'; "
        f"request a token with resource={RESOURCE}"
    )
    resource = refused.value.description.rpartition("resource=")[2]
    again = client_token(server.base_url, worker, scope="orders:read", resource=resource)
    assert asyncio.run(guard.authenticate(bearer(again))).audience == (RESOURCE,)
    # The blocking path (Flask) agrees.
    fresh = Guard.for_issuer(server.base_url, audience=RESOURCE)
    assert fresh.authenticate_blocking(bearer(token)).subject == worker.client_id


def test_opaque_tokens_by_introspection(server: ServerThread, register: Registrar) -> None:
    api = register(NewClient("orders-api", scope="none"))
    worker = register(
        NewClient(
            "w",
            scope="orders:read",
            access_token_format="opaque",
            allowed_resources=(RESOURCE,),
        )
    )
    assert api.secret is not None and worker.secret is not None
    clock = FrozenClock(start=1000)
    introspector = Introspector(
        server.base_url + "/introspect",
        client_id=api.client_id,
        client_secret=api.secret,
        issuer=server.base_url,
        monotonic=clock.monotonic,
    )
    guard = Guard(introspector=introspector, audiences=[RESOURCE])
    token = client_token(server.base_url, worker, resource=RESOURCE)
    assert token.startswith("tsat_")
    # Case 60: an active token for the issuer's default audience is not ours either.
    other = client_token(server.base_url, worker)
    with pytest.raises(
        InvalidToken, match=f"audience is '{server.base_url}'.*accepts '{RESOURCE}'.*resource="
    ):
        guard.authenticate_blocking(bearer(other))

    async def scenario() -> None:
        principal = await guard.authenticate(bearer(token))
        assert principal.kind == "opaque"
        assert principal.scopes == {"orders:read"}
        assert (await guard.authenticate(bearer(token))).subject == principal.subject
        assert introspector.calls == 2  # the other token's, then this one's: then the cache
        revoked = await asyncio.to_thread(
            httpx.post,
            server.base_url + "/revoke",
            data={"token": token},
            auth=(worker.client_id, worker.secret or ""),
        )
        assert revoked.status_code == 200
        clock.advance(1.0)  # the staleness bound (1 s) has passed
        with pytest.raises(InvalidToken, match="not active"):
            await guard.authenticate(bearer(token))
        with pytest.raises(InvalidToken):
            await guard.authenticate(bearer("tsat_made-up"))
        await guard.aclose()

    asyncio.run(scenario())
    assert guard.authenticate_blocking is not None


def test_introspection_down_fails_closed() -> None:
    dead = f"http://127.0.0.1:{free_port()}/introspect"
    introspector = Introspector(dead, client_id="rs", client_secret="s", timeout=2)
    guard = Guard(introspector=introspector, audiences=[RESOURCE])
    with pytest.raises(ServiceUnavailable):
        asyncio.run(guard.authenticate(bearer("tsat_anything")))
    with pytest.raises(ServiceUnavailable):
        guard.authenticate_blocking(bearer("tsat_anything"))


def test_introspection_answering_garbage_fails_closed() -> None:
    with StubServer() as stub:
        stub.routes["/introspect"] = (500, {}, {"error": "server_error"})
        stub.routes["/odd"] = (200, {}, ["active", True])
        for path in ("/introspect", "/odd"):
            guard = Guard(
                introspector=Introspector(stub.base_url + path, client_id="a", client_secret="b"),
                audiences=[RESOURCE],
            )
            with pytest.raises(ServiceUnavailable):
                guard.authenticate_blocking(bearer("tsat_x"))


def test_jwks_down_fails_closed() -> None:
    guard = Guard.for_issuer(f"http://127.0.0.1:{free_port()}", audience="x")
    with pytest.raises(ServiceUnavailable):
        asyncio.run(guard.authenticate(bearer("a.b.c")))


def test_api_keys_by_the_verify_endpoint() -> None:
    good = {
        "active": True,
        "key_id": "k1",
        "name": "ci",
        "owner": "team-a",
        "scope": "orders:read",
        "expires_at": None,
        "rate_limit": None,
    }
    with StubServer() as stub:
        stub.routes["/api-keys/verify"] = (200, {}, good)
        clock = FrozenClock(start=1000)
        verifier = RemoteApiKeyVerifier(
            stub.base_url + "/api-keys/verify",
            client_id="gw",
            client_secret="s",
            monotonic=clock.monotonic,
        )
        guard = Guard(api_keys=verifier)
        text = generate_api_key("live").text
        key = Credential("api_key", text)
        principal = guard.authenticate_blocking(key, "10.0.0.7")
        assert (principal.subject, principal.token_id, principal.kind) == (
            "team-a",
            "k1",
            "api_key",
        )
        _, headers, body = stub.requests[-1]
        assert headers["x-api-key"] == text
        assert body == b"client_ip=10.0.0.7"
        assert headers["authorization"].startswith("Basic ")
        guard.authenticate_blocking(key, "10.0.0.7")
        assert verifier.calls == 1  # cached
        stub.routes["/api-keys/verify"] = (401, {}, {"error": "invalid_key"})
        clock.advance(1.0)  # revoked: refused once the 1 s bound has passed
        with pytest.raises(InvalidToken):
            guard.authenticate_blocking(key, "10.0.0.7")
        stub.routes["/api-keys/verify"] = (403, {}, {"error": "forbidden_source"})
        with pytest.raises(ForbiddenSource):
            asyncio.run(guard.authenticate(key, "10.0.0.8"))
        stub.routes["/api-keys/verify"] = (429, {"retry-after": "7"}, {"error": "rate_limited"})
        with pytest.raises(RateLimited) as limited:
            guard.authenticate_blocking(key, "10.0.0.9")
        assert limited.value.retry_after == 7
        stub.routes["/api-keys/verify"] = (502, {}, {})
        with pytest.raises(ServiceUnavailable):
            guard.authenticate_blocking(key, "10.0.0.10")
        calls = verifier.calls
        typo = Credential("api_key", text[:-1] + ("A" if text[-1] != "A" else "B"))
        with pytest.raises(InvalidToken, match="checksum"):
            guard.authenticate_blocking(typo, "10.0.0.7")
        assert verifier.calls == calls  # refused offline: the issuer never heard of it
