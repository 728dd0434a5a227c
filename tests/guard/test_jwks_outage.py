"""An unknown ``kid`` while the issuer's JWKS cannot be read is 503 (we cannot know whether the
key is real), not 401; once the JWKS answers again, an unknown kid is 401 and a rotated-in key
passes. Async and blocking paths alike; refetches stay bounded by the cool-down (case 6)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from tests.guard.conftest import Keys
from tests.guard.forge import AUDIENCE, ISSUER, claims, sign
from tests.guard.servers import StubServer
from tokensmith.core.clock import FrozenClock
from tokensmith.guard import (
    Credential,
    Guard,
    JwksCache,
    JwtValidator,
    Principal,
    ServiceUnavailable,
    UnknownKeyId,
    render,
)
from tokensmith.jose.keys import SigningKey

COOLDOWN = 30.0


@pytest.fixture
def jwks_stub(keys: Keys) -> Iterator[StubServer]:
    with StubServer() as stub:
        stub.routes["/jwks"] = (200, {}, {"keys": [keys.es.public_jwk()]})
        yield stub


def guard_for(url: str, clock: FrozenClock) -> tuple[Guard, JwksCache]:
    jwks = JwksCache(url, unknown_kid_cooldown=COOLDOWN, monotonic=clock.monotonic, timeout=2)
    validator = JwtValidator(jwks, issuer=ISSUER, audiences=[AUDIENCE])
    return Guard(jwt=validator, jwks=jwks), jwks


Check = Callable[[Guard, str], Principal]


def check_async(guard: Guard, token: str) -> Principal:
    return asyncio.run(guard.authenticate(Credential("bearer", token)))


def check_blocking(guard: Guard, token: str) -> Principal:
    return guard.authenticate_blocking(Credential("bearer", token))


def token_of(key: SigningKey) -> str:
    return sign(key, claims())


@pytest.mark.parametrize("check", [check_async, check_blocking], ids=["async", "blocking"])
def test_unknown_kid_while_the_jwks_fails_is_503(
    jwks_stub: StubServer, keys: Keys, check: Check
) -> None:
    clock = FrozenClock(start=1000)
    guard, jwks = guard_for(jwks_stub.base_url + "/jwks", clock)
    assert check(guard, token_of(keys.es)).subject == "user-1"  # keys loaded
    jwks_stub.routes["/jwks"] = (500, {}, {"error": "server_error"})
    fetches = jwks.fetches
    with pytest.raises(ServiceUnavailable) as refused:
        check(guard, token_of(keys.rogue))  # rotated in, as far as we can tell
    status, headers, _ = render(refused.value, "tokensmith")
    assert status == 503 and ("retry-after", "1") in headers
    assert jwks.fetches == fetches + 1
    # Within the cool-down: still 503, and no new request to the issuer.
    with pytest.raises(ServiceUnavailable):
        check(guard, sign(keys.rogue, claims(), kid="another-unknown"))
    assert jwks.fetches == fetches + 1
    assert check(guard, token_of(keys.es)).subject == "user-1"  # known keys keep working
    # The issuer is back: an unknown kid is what it is, a 401.
    jwks_stub.routes["/jwks"] = (200, {}, {"keys": [keys.es.public_jwk()]})
    clock.advance(COOLDOWN)
    with pytest.raises(UnknownKeyId) as unknown:
        check(guard, token_of(keys.rogue))
    assert render(unknown.value, "tokensmith")[0] == 401
    assert jwks.fetches == fetches + 2
    # And a key rotated in is found by the next refetch.
    jwks_stub.routes["/jwks"] = (200, {}, {"keys": [k.public_jwk() for k in (keys.es, keys.rogue)]})
    clock.advance(COOLDOWN)
    assert check(guard, token_of(keys.rogue)).subject == "user-1"


@pytest.mark.parametrize("check", [check_async, check_blocking], ids=["async", "blocking"])
def test_unknown_kid_while_the_jwks_server_is_gone_is_503(keys: Keys, check: Check) -> None:
    clock = FrozenClock(start=1000)
    with StubServer() as stub:
        stub.routes["/jwks"] = (200, {}, {"keys": [keys.es.public_jwk()]})
        guard, _ = guard_for(stub.base_url + "/jwks", clock)
        assert check(guard, token_of(keys.es)).subject == "user-1"
    # The server is shut down: connections are refused.
    with pytest.raises(ServiceUnavailable):
        check(guard, token_of(keys.rogue))
    assert check(guard, token_of(keys.es)).subject == "user-1"  # from the cache


@pytest.mark.parametrize(
    "answer",
    [(404, {}, {}), (200, {}, {"not": "a jwks"}), (503, {}, {})],
    ids=["404", "not-jwks", "503"],
)
def test_any_unusable_answer_counts_as_unavailable(
    jwks_stub: StubServer, keys: Keys, answer: tuple[int, dict[str, str], object]
) -> None:
    guard, _ = guard_for(jwks_stub.base_url + "/jwks", FrozenClock(start=1000))
    check_blocking(guard, token_of(keys.es))
    jwks_stub.routes["/jwks"] = answer
    with pytest.raises(ServiceUnavailable):
        check_blocking(guard, token_of(keys.rogue))


def test_unknown_kid_with_a_healthy_jwks_stays_401(jwks_stub: StubServer, keys: Keys) -> None:
    guard, jwks = guard_for(jwks_stub.base_url + "/jwks", FrozenClock(start=1000))
    check_blocking(guard, token_of(keys.es))
    for i in range(5):
        with pytest.raises(UnknownKeyId):
            check_blocking(guard, sign(keys.rogue, claims(), kid=f"made-up-{i}"))
    assert jwks.fetches == 2  # the first load, one refetch for the whole cool-down
