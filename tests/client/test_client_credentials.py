"""ClientCredentialsAuth against a real server: the three client authentication methods, the
cache, single-flight, the one retry on 401 invalid_token, and a token endpoint outage."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey

from tests.client.conftest import Registered, Registrar
from tests.guard.servers import asgi_server
from tests.support import ServerThread
from tokensmith.client import (
    ClientCredentialsAuth,
    ServerRefused,
    TokenEndpointUnavailable,
)
from tokensmith.core.clock import FrozenClock
from tokensmith.guard import Guard, Introspector
from tokensmith.guard.asgi import GuardMiddleware, principal_of
from tokensmith.oauth.clients import NewClient

API = "https://orders.example.com"
_made: list[ClientCredentialsAuth] = []


def make(issuer: str, client_id: str, **options: Any) -> ClientCredentialsAuth:
    options.setdefault("dpop", False)  # bearer tokens here; DPoP: test_dpop_end_to_end.py
    auth = ClientCredentialsAuth.for_issuer(issuer, client_id, **options)
    _made.append(auth)
    return auth


@pytest.fixture(autouse=True)
def _close_auths() -> Iterator[None]:
    yield
    while _made:
        _made.pop().close()


def machine(register: Registrar, **extra: Any) -> Registered:
    return register(
        NewClient(
            "worker",
            grant_types=("client_credentials",),
            scope="api:read",
            allowed_resources=(API,),
            **extra,
        )
    )


def test_client_secret_basic(server: ServerThread, register: Registrar) -> None:
    client = machine(register)
    auth = make(server.base_url, client.client_id, client_secret=client.secret, scope="api:read")
    assert auth.method == "client_secret_basic"
    token = auth.tokens.get()
    assert token.scope == "api:read"
    assert introspect(server, register, token.value)["client_id"] == client.client_id


def test_client_secret_post(server: ServerThread, register: Registrar) -> None:
    client = machine(register, auth_method="client_secret_post")
    auth = make(
        server.base_url, client.client_id, client_secret=client.secret, method="client_secret_post"
    )
    assert introspect(server, register, auth.access_token())["active"] is True
    # The same client through the wrong method: the server's refusal, with its code.
    wrong = make(server.base_url, client.client_id, client_secret=client.secret)
    with pytest.raises(ServerRefused) as refused:
        wrong.access_token()
    assert refused.value.error == "invalid_client"


def test_private_key_jwt(server: ServerThread, register: Registrar) -> None:
    key = ECKey.generate_key("P-256")
    jwks = {"keys": [{**key.as_dict(private=False), "kid": key.thumbprint(), "alg": "ES256"}]}
    client = machine(register, jwks=jwks)
    auth = make(server.base_url, client.client_id, private_key=key)
    assert auth.method == "private_key_jwt"
    first = auth.access_token()
    auth.tokens.forget()  # a second assertion: a fresh jti, accepted again
    assert auth.access_token() != first
    other = make(server.base_url, client.client_id, private_key=ECKey.generate_key("P-256"))
    with pytest.raises(ServerRefused, match="invalid_client"):
        other.access_token()


def test_a_wrong_secret_is_a_clear_error_without_the_secret(
    server: ServerThread, register: Registrar
) -> None:
    client = machine(register)
    auth = make(server.base_url, client.client_id, client_secret="not-the-secret-0123456789")
    with pytest.raises(ServerRefused) as refused:
        auth.access_token()
    assert refused.value.error == "invalid_client"
    assert "not-the-secret" not in str(refused.value)


def test_the_token_is_cached_until_shortly_before_it_expires(
    server: ServerThread, register: Registrar
) -> None:
    client = machine(register, access_token_ttl=600)
    clock = FrozenClock(start=__import__("time").time())
    auth = make(server.base_url, client.client_id, client_secret=client.secret, clock=clock)
    first = auth.access_token()
    clock.advance(569)  # 600 s, less 30 s of skew
    assert auth.access_token() == first and auth.tokens.fetches == 1
    clock.advance(1)
    assert auth.access_token() != first and auth.tokens.fetches == 2


def test_eight_threads_and_eight_tasks_share_one_token_request(
    server: ServerThread, register: Registrar
) -> None:
    client = machine(register)
    requests: list[str] = []

    def count(request: httpx.Request) -> None:
        requests.append(request.url.path)

    http = httpx.Client(timeout=10, event_hooks={"request": [count]})
    auth = ClientCredentialsAuth.for_issuer(
        server.base_url, client.client_id, client_secret=client.secret, http=http, dpop=False
    )
    requests.clear()  # discovery
    barrier = threading.Barrier(8)
    got: list[str] = []

    def one() -> None:
        barrier.wait()
        got.append(auth.access_token())

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert requests == ["/token"] and len(set(got)) == 1

    auth.tokens.forget()
    requests.clear()

    async def tasks() -> set[str]:
        found = await asyncio.gather(*(auth.tokens.get_async() for _ in range(8)))
        return {token.value for token in found}

    assert len(asyncio.run(tasks())) == 1
    assert requests == ["/token"]
    http.close()


@pytest.fixture
def guarded_api(server: ServerThread, register: Registrar) -> Iterator[tuple[str, list[int]]]:
    """An API behind tokensmith.guard, introspecting at the real server (no cache), that
    counts the requests it answered with 401."""
    resource = machine(register)
    assert resource.secret is not None
    introspector = Introspector(
        server.base_url + "/introspect",
        client_id=resource.client_id,
        client_secret=resource.secret,
        cache_seconds=0,
    )
    refusals: list[int] = []

    async def api(scope: Any, receive: Any, send: Any) -> None:
        body = principal_of(scope).subject.encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    guarded = GuardMiddleware(api, Guard(introspector=introspector, audiences=[API]))

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await introspector.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return

        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                refusals.append(401)
            await send(message)

        await guarded(scope, receive, watch)

    with asgi_server(counting) as base:
        yield base, refusals


def test_a_revoked_token_is_replaced_once_on_401_invalid_token(
    server: ServerThread, register: Registrar, guarded_api: tuple[str, list[int]]
) -> None:
    base, refusals = guarded_api
    client = machine(register)
    auth = make(server.base_url, client.client_id, client_secret=client.secret, resource=API)
    with httpx.Client(auth=auth, timeout=10) as api:
        assert api.get(base + "/orders").status_code == 200
        revoked = auth.access_token()
        answer = httpx.post(
            server.base_url + "/revoke",
            data={"token": revoked},
            auth=(client.client_id, client.secret or ""),
        )
        assert answer.status_code == 200
        response = api.post(base + "/orders", content=b"a body sent twice")
        assert response.status_code == 200 and refusals == [401]
        assert auth.access_token() != revoked and auth.tokens.fetches == 2


def test_an_api_that_keeps_refusing_costs_one_retry_only(
    server: ServerThread, register: Registrar, guarded_api: tuple[str, list[int]]
) -> None:
    base, refusals = guarded_api
    client = machine(register)
    # No resource: the tokens are never for this API, which refuses every one as invalid_token.
    auth = make(server.base_url, client.client_id, client_secret=client.secret)
    with httpx.Client(auth=auth, timeout=10) as api:
        response = api.get(base + "/orders")
    assert (
        response.status_code == 401
        and 'error="invalid_token"' in response.headers["www-authenticate"]
    )
    assert refusals == [401, 401] and auth.tokens.fetches == 2


def test_the_async_flow_retries_too(
    server: ServerThread, register: Registrar, guarded_api: tuple[str, list[int]]
) -> None:
    base, refusals = guarded_api
    client = machine(register)
    auth = make(server.base_url, client.client_id, client_secret=client.secret, resource=API)

    async def calls() -> list[int]:
        async with httpx.AsyncClient(auth=auth, timeout=10) as api:
            first = (await api.get(base + "/orders")).status_code
            async with httpx.AsyncClient() as plain:
                await plain.post(
                    server.base_url + "/revoke",
                    data={"token": auth.access_token()},
                    auth=(client.client_id, client.secret or ""),
                )
            return [first, (await api.get(base + "/orders")).status_code]

    assert asyncio.run(calls()) == [200, 200]
    assert refusals == [401] and auth.tokens.fetches == 2


def test_token_endpoint_down_a_valid_cached_token_keeps_working(
    settings: Any, register: Registrar, server: ServerThread
) -> None:
    client = machine(register, access_token_ttl=600)
    clock = FrozenClock(start=__import__("time").time())
    auth = make(server.base_url, client.client_id, client_secret=client.secret, clock=clock)
    first = auth.access_token()
    server.__exit__()  # the token endpoint goes away
    clock.advance(580)  # due for renewal, not expired
    assert auth.access_token() == first
    clock.advance(20)  # expired: no valid token can be had
    with pytest.raises(TokenEndpointUnavailable, match="unreachable"):
        auth.access_token()


def introspect(server: ServerThread, register: Registrar, token: str) -> dict[str, Any]:
    resource = machine(register)
    answer = httpx.post(
        server.base_url + "/introspect",
        data={"token": token},
        auth=(resource.client_id, resource.secret or ""),
    )
    body: dict[str, Any] = answer.json()
    return body
