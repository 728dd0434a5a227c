"""The code and refresh grants on in-memory stores and a frozen clock: no server, no database.

``oauth/code_exchange.exchange_code`` and ``oauth/refresh_rotation.rotate_refresh_token`` driven
through ``tests/oauth/protocol.py: memory_grant_deps``: a code is spent once, a replay revokes
what it produced, a refresh token rotates once and its reuse ends the family, and every lifetime
ends when the clock says. The same grants run against a real server in test_authorization.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from tests.oauth.protocol import MemoryGrant, memory_grant_deps
from tests.support import OFFERED, token_request
from tokensmith.accounts.sessions import Session
from tokensmith.accounts.users import User
from tokensmith.core.clock import FrozenClock
from tokensmith.core.secrets import keyed_hash
from tokensmith.errors import InvalidGrant
from tokensmith.jose.jws import verify_jwt
from tokensmith.oauth.authorization import AuthorizationRequest, issue_code
from tokensmith.oauth.clients import Client, NewClient
from tokensmith.oauth.code_exchange import exchange_code
from tokensmith.oauth.grants import MAX_CODE_LIFETIME
from tokensmith.oauth.params import Params
from tokensmith.oauth.pkce import s256
from tokensmith.oauth.refresh_rotation import MAX_DUPLICATES, rotate_refresh_token

pytestmark = pytest.mark.anyio
CALLBACK = "https://app.example.com/cb"
VERIFIER = "v" * 50


@pytest.fixture
def grant(clock: FrozenClock) -> MemoryGrant:
    return memory_grant_deps(clock)


@pytest.fixture
async def client(grant: MemoryGrant, clock: FrozenClock) -> Client:
    return await register_app(grant, clock)


async def register_app(grant: MemoryGrant, clock: FrozenClock) -> Client:
    """Alice, and a confidential web app that may refresh."""
    now = clock.now()
    await grant.stores.users.add(User("u1", "alice", None, "$argon2id$unused", now - 10, now - 10))
    app = NewClient(
        "app",
        grant_types=("authorization_code", "refresh_token"),
        redirect_uris=(CALLBACK,),
        scope="openid api",
    ).validated("c1", b"x" * 32, now, offered=OFFERED)
    await grant.stores.clients.add(app)
    return app


async def new_code(grant: MemoryGrant, clock: FrozenClock, client_id: str = "c1") -> str:
    now = clock.now()
    request = AuthorizationRequest(client_id, CALLBACK, "openid api", None, s256(VERIFIER))
    session = Session(b"s" * 32, "u1", now, "pwd", now, now + 3600)
    return await issue_code(grant.stores.codes, grant.deps.pepper, now, request, "u1", session)


def code_params(code: str, verifier: str = VERIFIER) -> Params:
    return Params(
        [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
        ]
    )


def refresh_params(token: str) -> Params:
    return Params([("grant_type", "refresh_token"), ("refresh_token", token)])


def claims(grant: MemoryGrant, body: dict[str, Any]) -> dict[str, Any]:
    return verify_jwt(body["access_token"], {grant.signing_key.kid: grant.signing_key})[1]


async def access_revoked(grant: MemoryGrant, body: dict[str, Any]) -> bool:
    record = await grant.stores.tokens.get_by_jti(claims(grant, body)["jti"])
    assert record is not None  # tied to a code or a family: always stored
    return record.revoked_at is not None


async def family_of(grant: MemoryGrant, refresh_token: str) -> Any:
    found = await grant.stores.refresh.get(keyed_hash(grant.deps.pepper, refresh_token))
    assert found is not None
    return found[1]


async def test_a_code_is_exchanged_once_and_its_replay_revokes_what_it_gave(
    grant: MemoryGrant, client: Client, clock: FrozenClock
) -> None:
    code = await new_code(grant, clock)
    body = await exchange_code(grant.deps, client, token_request(code_params(code)))
    assert body["token_type"] == "Bearer" and body["refresh_token"].startswith("tsrt_")
    assert claims(grant, body)["sub"] == "u1" and "id_token" in body
    assert not await access_revoked(grant, body)

    clock.advance(5)
    with pytest.raises(InvalidGrant):
        await exchange_code(grant.deps, client, token_request(code_params(code)))
    assert await access_revoked(grant, body)
    family = await family_of(grant, body["refresh_token"])
    assert (family.revoked_at, family.revoked_reason) == (clock.now(), "code_replayed")
    stored = await grant.stores.codes.get(keyed_hash(grant.deps.pepper, code))
    assert stored is not None and stored.replayed_at == clock.now()
    assert [e.subject for e in grant.audit.named("code.replayed")] == ["u1"]
    with pytest.raises(InvalidGrant):
        await rotate_refresh_token(
            grant.deps, client, token_request(refresh_params(body["refresh_token"]))
        )


async def test_another_clients_attempt_leaves_the_code_unspent(
    grant: MemoryGrant, client: Client, clock: FrozenClock
) -> None:
    thief = NewClient(
        "thief", grant_types=("authorization_code",), redirect_uris=(CALLBACK,), scope="api"
    ).validated("c2", b"y" * 32, clock.now(), offered=OFFERED)
    code = await new_code(grant, clock)
    with pytest.raises(InvalidGrant):
        await exchange_code(grant.deps, thief, token_request(code_params(code)))
    assert grant.audit.named("code.replayed") == []
    assert "access_token" in await exchange_code(
        grant.deps, client, token_request(code_params(code))
    )


async def test_a_wrong_verifier_spends_the_code(
    grant: MemoryGrant, client: Client, clock: FrozenClock
) -> None:
    code = await new_code(grant, clock)
    with pytest.raises(InvalidGrant):
        await exchange_code(grant.deps, client, token_request(code_params(code, "w" * 50)))
    with pytest.raises(InvalidGrant):  # the right one comes too late: the code is spent
        await exchange_code(grant.deps, client, token_request(code_params(code)))


async def test_a_code_expires_with_the_clock(
    grant: MemoryGrant, client: Client, clock: FrozenClock
) -> None:
    late, in_time = await new_code(grant, clock), await new_code(grant, clock)
    clock.advance(MAX_CODE_LIFETIME - 1)
    assert "access_token" in await exchange_code(
        grant.deps, client, token_request(code_params(in_time))
    )
    clock.advance(1)
    with pytest.raises(InvalidGrant):
        await exchange_code(grant.deps, client, token_request(code_params(late)))
    spent = await grant.stores.codes.get(keyed_hash(grant.deps.pepper, late))
    assert spent is not None and spent.consumed_at == clock.now()  # refused, and spent


async def test_of_concurrent_exchanges_of_one_code_at_most_one_keeps_its_tokens(
    grant: MemoryGrant, client: Client, clock: FrozenClock
) -> None:
    """SECURITY.md cases 21 and 22 on interleaved callers: the store yields at every call, so the
    replays run while the winner is still storing what it issued."""
    code = await new_code(grant, clock)
    results = await asyncio.gather(
        *(exchange_code(grant.deps, client, token_request(code_params(code))) for _ in range(5)),
        return_exceptions=True,
    )
    bodies = [r for r in results if isinstance(r, dict)]
    assert all(isinstance(r, InvalidGrant) for r in results if not isinstance(r, dict))
    assert len(bodies) <= 1
    assert len(grant.audit.named("code.replayed")) == 4
    # Whatever was issued is dead: a replay happened, so nothing from the code survives.
    code_hash = keyed_hash(grant.deps.pepper, code)
    assert await grant.stores.tokens.revoke_by_code(code_hash, clock.now()) == 0
    assert await grant.stores.refresh.revoke_by_code(code_hash, clock.now(), "test") == 0


async def test_a_refresh_token_rotates_once_and_its_reuse_ends_the_family(
    grant: MemoryGrant, client: Client, clock: FrozenClock
) -> None:
    first = await exchange_code(
        grant.deps, client, token_request(code_params(await new_code(grant, clock)))
    )
    clock.advance(60)
    second = await rotate_refresh_token(
        grant.deps, client, token_request(refresh_params(first["refresh_token"]))
    )
    assert second["refresh_token"] != first["refresh_token"]
    clock.advance(60)
    third = await rotate_refresh_token(
        grant.deps, client, token_request(refresh_params(second["refresh_token"]))
    )
    for body in (first, second, third):
        assert not await access_revoked(grant, body)

    clock.advance(60)
    with pytest.raises(InvalidGrant, match="already used"):  # a stolen copy of the first
        await rotate_refresh_token(
            grant.deps, client, token_request(refresh_params(first["refresh_token"]))
        )
    family = await family_of(grant, third["refresh_token"])
    assert (family.revoked_at, family.revoked_reason) == (clock.now(), "reuse_detected")
    for body in (first, second, third):  # every access token the family produced is revoked
        assert await access_revoked(grant, body)
    with pytest.raises(InvalidGrant):  # the legitimate holder's latest token is dead too
        await rotate_refresh_token(
            grant.deps, client, token_request(refresh_params(third["refresh_token"]))
        )
    (event,) = grant.audit.named("token.reuse_detected")
    assert event.detail == {"family_id": family.family_id, "action": "family revoked"}


async def test_concurrent_refreshes_of_one_token_share_one_successor(
    grant: MemoryGrant, client: Client, clock: FrozenClock
) -> None:
    """Within the grace window and its count, every presentation gets the one successor."""
    first = await exchange_code(
        grant.deps, client, token_request(code_params(await new_code(grant, clock)))
    )
    params = refresh_params(first["refresh_token"])
    results = await asyncio.gather(
        *(rotate_refresh_token(grant.deps, client, token_request(params)) for _ in range(5))
    )
    assert len({r["refresh_token"] for r in results}) == 1
    family = await family_of(grant, first["refresh_token"])
    assert family.revoked_at is None


async def test_concurrent_refreshes_past_the_count_end_the_family(
    grant: MemoryGrant, client: Client, clock: FrozenClock
) -> None:
    first = await exchange_code(
        grant.deps, client, token_request(code_params(await new_code(grant, clock)))
    )
    params = refresh_params(first["refresh_token"])
    results = await asyncio.gather(
        *(rotate_refresh_token(grant.deps, client, token_request(params)) for _ in range(20)),
        return_exceptions=True,
    )
    assert all(isinstance(r, dict | InvalidGrant) for r in results)
    answered = [r for r in results if isinstance(r, dict)]
    assert 1 <= len(answered) <= 1 + MAX_DUPLICATES
    assert len({r["refresh_token"] for r in answered}) == 1  # never two chains
    family = await family_of(grant, first["refresh_token"])
    assert family.revoked_reason == "reuse_detected"  # more than a handful is reuse
    assert await grant.stores.tokens.revoke_by_family(family.family_id, clock.now()) == 0


async def test_without_a_window_concurrent_refreshes_are_reuse(
    grant: MemoryGrant, client: Client, clock: FrozenClock
) -> None:
    strict = dataclasses.replace(
        grant.deps, policy=dataclasses.replace(grant.deps.policy, refresh_grace=0)
    )
    first = await exchange_code(
        strict, client, token_request(code_params(await new_code(grant, clock)))
    )
    params = refresh_params(first["refresh_token"])
    results = await asyncio.gather(
        *(rotate_refresh_token(strict, client, token_request(params)) for _ in range(5)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, dict) for r in results) <= 1
    refused = [r for r in results if isinstance(r, InvalidGrant)]
    assert refused and all("rotated 0 s ago by another request" in str(r) for r in refused)
    family = await family_of(grant, first["refresh_token"])
    assert family.revoked_reason == "reuse_detected"


async def test_a_refresh_token_expires_with_the_clock(clock: FrozenClock) -> None:
    grant = memory_grant_deps(clock, refresh_token_ttl=3600, idle_timeout=86400)
    app = await register_app(grant, clock)
    token = (
        await exchange_code(
            grant.deps, app, token_request(code_params(await new_code(grant, clock)))
        )
    )["refresh_token"]
    clock.advance(3599)
    token = (await rotate_refresh_token(grant.deps, app, token_request(refresh_params(token))))[
        "refresh_token"
    ]
    clock.advance(3600)  # the successor lived an hour from its own issue
    with pytest.raises(InvalidGrant):
        await rotate_refresh_token(grant.deps, app, token_request(refresh_params(token)))
    family = await family_of(grant, token)
    assert family.revoked_at is None  # an expired token ends nothing: it is merely refused
