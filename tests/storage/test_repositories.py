"""The storage contract: every repository, the same assertions, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import replace

import pytest

from tests.support import OFFERED
from tokensmith.accounts.users import User, hash_password, verify_password
from tokensmith.apikeys.records import ApiKeyRecord
from tokensmith.audit.events import AuditEvent, AuditQuery
from tokensmith.core.secrets import keyed_hash
from tokensmith.oauth.clients import (
    NewClient,
    generate_client_id,
    generate_client_secret,
    secret_matches,
)
from tokensmith.oauth.grants import AuthorizationCode, Consent
from tokensmith.oauth.tokens import IssuedToken, RefreshFamily, RefreshToken
from tokensmith.persistence.repositories.clients import CLIENT_CACHE_SECONDS, SqlClientStore
from tokensmith.runtime.services import Services

pytestmark = pytest.mark.anyio
NOW = 1_700_000_000


def h(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


async def test_clients_round_trip_and_secret_rotation(services: Services) -> None:
    pepper = services.master.pepper
    secret = generate_client_secret()
    client = NewClient(
        "Orders API",
        grant_types=("client_credentials",),
        scope="orders:read orders:write",
    ).validated(generate_client_id(), keyed_hash(pepper, secret), NOW, offered=OFFERED)
    await services.clients.add(client)
    stored = await services.clients.get(client.client_id)
    assert stored == client
    assert await services.clients.get("nope' OR '1'='1") is None
    assert secret_matches(stored, pepper, secret, NOW)
    assert not secret_matches(stored, pepper, secret + "x", NOW)

    new_secret = generate_client_secret()
    assert await services.clients.replace_secret(
        client.client_id, keyed_hash(pepper, new_secret), NOW + 3600, NOW
    )
    rotated = await services.clients.get(client.client_id)
    assert rotated is not None
    assert secret_matches(rotated, pepper, new_secret, NOW)
    assert secret_matches(rotated, pepper, secret, NOW + 3599)  # inside the grace period
    assert not secret_matches(rotated, pepper, secret, NOW + 3600)  # after it

    strict = generate_client_secret()
    await services.clients.replace_secret(client.client_id, keyed_hash(pepper, strict), None, NOW)
    again = await services.clients.get(client.client_id)
    assert again is not None
    assert not secret_matches(again, pepper, new_secret, NOW)

    assert [c.client_id for c in await services.clients.list()] == [client.client_id]
    assert await services.clients.delete(client.client_id)
    assert not await services.clients.delete(client.client_id)


async def test_a_leaked_secret_is_found_and_revoked_alone(services: Services) -> None:
    pepper = services.master.pepper
    old, new = generate_client_secret(), generate_client_secret()
    client = NewClient("leaky", grant_types=("client_credentials",)).validated(
        "c-leak", keyed_hash(pepper, old), NOW, offered=OFFERED
    )
    await services.clients.add(client)
    await services.clients.replace_secret("c-leak", keyed_hash(pepper, new), NOW + 3600, NOW)
    for secret in (old, new):
        found = await services.clients.find_by_secret(keyed_hash(pepper, secret))
        assert found is not None and found.client_id == "c-leak"
    assert await services.clients.find_by_secret(keyed_hash(pepper, "unknown")) is None
    assert await services.clients.revoke_secret("c-leak", keyed_hash(pepper, old), NOW + 1)
    stored = await services.clients.get("c-leak")
    assert stored is not None
    assert not secret_matches(stored, pepper, old, NOW + 2)
    assert secret_matches(stored, pepper, new, NOW + 2)  # the other secret keeps working
    assert not await services.clients.revoke_secret("c-leak", keyed_hash(pepper, old), NOW + 3)
    assert await services.clients.revoke_secret("c-leak", keyed_hash(pepper, new), NOW + 4)
    stored = await services.clients.get("c-leak")
    assert stored is not None and not secret_matches(stored, pepper, new, NOW + 5)


async def test_public_client_has_no_secret_to_replace(services: Services) -> None:
    client = NewClient("CLI", is_public=True, redirect_uris=("http://127.0.0.1/cb",)).validated(
        generate_client_id(), None, NOW, offered=OFFERED
    )
    await services.clients.add(client)
    assert client.grant_types == ("authorization_code", "refresh_token")
    assert not await services.clients.replace_secret(client.client_id, b"x" * 32, None, NOW)
    stored = await services.clients.get(client.client_id)
    assert stored is not None
    assert not secret_matches(stored, services.master.pepper, "", NOW)


async def test_users(services: Services) -> None:
    user = User("u1", "alice", "alice@example.com", hash_password("correct horse"), NOW, NOW)
    await services.users.add(user)
    stored = await services.users.get_by_username("alice")
    assert stored == user
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert verify_password(stored.password_hash, "correct horse")
    assert not verify_password(stored.password_hash, "wrong horse")
    assert await services.users.set_password("u1", hash_password("new password!"), NOW + 5)
    changed = await services.users.get("u1")
    assert changed is not None
    assert changed.password_changed_at == NOW + 5
    assert await services.users.get_by_username("ALICE") is None


def code(code_hash: bytes, **overrides: object) -> AuthorizationCode:
    values: dict[str, object] = {
        "code_hash": code_hash,
        "client_id": "c1",
        "user_id": "u1",
        "redirect_uri": "https://app.example.com/cb",
        "scope": "openid",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "created_at": NOW,
        "expires_at": NOW + 60,
    }
    values.update(overrides)
    return AuthorizationCode(**values)  # type: ignore[arg-type]


async def test_code_is_consumed_once(services: Services) -> None:
    await services.codes.add(code(h("a"), nonce="n", auth_time=NOW - 5))
    # Another client's attempt does not spend the code.
    assert await services.codes.consume(h("a"), "other-client", NOW) is None
    first = await services.codes.consume(h("a"), "c1", NOW + 1)
    assert first is not None
    assert first.consumed_at == NOW + 1
    assert first.nonce == "n"
    assert await services.codes.consume(h("a"), "c1", NOW + 30) is None
    replayed = await services.codes.get(h("a"))
    assert replayed is not None
    assert replayed.consumed_at == NOW + 1
    assert await services.codes.consume(h("unknown"), "c1", NOW) is None


async def test_twenty_concurrent_exchanges_of_one_code_succeed_once(services: Services) -> None:
    await services.codes.add(code(h("race")))
    results = await asyncio.gather(
        *(services.codes.consume(h("race"), "c1", NOW) for _ in range(20))
    )
    assert sum(result is not None for result in results) == 1


async def test_expired_codes_are_purged(services: Services) -> None:
    await services.codes.add(code(h("old"), expires_at=NOW - 1))
    await services.codes.add(code(h("new")))
    assert await services.codes.purge_expired(NOW) == 1
    assert await services.codes.get(h("new")) is not None


async def test_consents(services: Services) -> None:
    assert await services.consents.get("u1", "c1") is None
    await services.consents.put(Consent("u1", "c1", "openid", NOW))
    await services.consents.put(Consent("u1", "c1", "openid profile", NOW + 1))
    stored = await services.consents.get("u1", "c1")
    assert stored == Consent("u1", "c1", "openid profile", NOW + 1)
    assert await services.consents.revoke("u1", "c1")
    assert await services.consents.get("u1", "c1") is None


async def test_issued_tokens_and_revocation(services: Services) -> None:
    token = IssuedToken(
        "j1",
        "c1",
        "u1",
        "api",
        "https://api",
        "opaque",
        NOW,
        NOW + 300,
        token_hash=h("t1"),
        family_id="f1",
        code_hash=h("code"),
    )
    await services.tokens.add(token)
    await services.tokens.add(
        IssuedToken("j2", "c1", "u1", "api", "https://api", "jwt", NOW, NOW + 300, family_id="f1")
    )
    assert await services.tokens.get_by_hash(h("t1")) == token
    assert await services.tokens.get_by_jti("j2") is not None
    assert await services.tokens.revoke_by_code(h("code"), NOW + 1) == 1
    assert await services.tokens.revoke_by_family("f1", NOW + 2) == 1  # j1 was already revoked
    revoked = await services.tokens.get_by_jti("j1")
    assert revoked is not None
    assert revoked.revoked_at == NOW + 1
    assert not await services.tokens.revoke("j1", NOW + 3)
    assert await services.tokens.purge_expired(NOW + 301) == 2


def refresh(token_hash: bytes, family: str = "f1", expires: int = NOW + 3600) -> RefreshToken:
    return RefreshToken(token_hash, family, "openid offline_access", NOW, expires)


async def new_family(services: Services, family_id: str = "f1") -> None:
    family = RefreshFamily(family_id, "c1", "u1", "openid offline_access", NOW, session_id="s1")
    await services.refresh.create_family(family, refresh(h(f"{family_id}-0"), family_id))


async def test_refresh_rotation_and_reuse(services: Services) -> None:
    await new_family(services)
    first = await services.refresh.rotate(h("f1-0"), refresh(h("f1-1")), NOW + 1)
    assert first.outcome == "rotated"
    second = await services.refresh.rotate(h("f1-1"), refresh(h("f1-2")), NOW + 2)
    assert second.outcome == "rotated"
    reused = await services.refresh.rotate(h("f1-0"), refresh(h("f1-x")), NOW + 3)
    assert reused.outcome == "reused"
    assert reused.family is not None
    assert reused.family.family_id == "f1"
    assert await services.refresh.get(h("f1-x")) is None  # reuse created nothing
    assert await services.refresh.revoke_family("f1", NOW + 3, "reuse")
    after = await services.refresh.rotate(h("f1-2"), refresh(h("f1-3")), NOW + 4)
    assert after.outcome == "revoked"
    stored = await services.refresh.get(h("f1-2"))
    assert stored is not None
    assert stored[1].revoked_reason == "reuse"
    unknown = await services.refresh.rotate(h("nope"), refresh(h("n2")), NOW)
    assert unknown.outcome == "unknown"


async def test_expired_refresh_token_does_not_rotate(services: Services) -> None:
    family = RefreshFamily("f9", "c1", "u1", "openid", NOW)
    await services.refresh.create_family(family, refresh(h("f9-0"), "f9", expires=NOW + 10))
    result = await services.refresh.rotate(h("f9-0"), refresh(h("f9-1"), "f9"), NOW + 10)
    assert result.outcome == "expired"


async def test_twenty_concurrent_refreshes_never_fork(services: Services) -> None:
    await new_family(services)
    results = await asyncio.gather(
        *(services.refresh.rotate(h("f1-0"), refresh(h(f"succ-{i}")), NOW + 1) for i in range(20))
    )
    outcomes = sorted(result.outcome for result in results)
    assert outcomes.count("rotated") == 1
    assert outcomes.count("reused") == 19
    for result in results:  # every loser sees the row as the winner left it
        if result.outcome == "reused":
            assert result.token is not None
            assert result.token.rotated_at == NOW + 1
            assert result.token.successor_hash is not None
    live = [i for i in range(20) if await services.refresh.get(h(f"succ-{i}")) is not None]
    assert len(live) == 1


async def test_logout_revokes_every_family_of_a_subject(services: Services) -> None:
    await new_family(services, "fa")
    await new_family(services, "fb")
    assert await services.refresh.revoke_for_subject("u1", NOW, "logout") == 2
    assert (
        await services.refresh.rotate(h("fa-0"), refresh(h("fa-1"), "fa"), NOW)
    ).outcome == "revoked"


async def test_api_keys(services: Services) -> None:
    record = ApiKeyRecord(
        "k1",
        "ci",
        "team-a",
        h("secret"),
        "deploy",
        NOW,
        expires_at=NOW + 86400,
        allowed_cidrs=("10.0.0.0/8",),
        rate_limit=100,
    )
    await services.api_keys.add(record)
    assert await services.api_keys.get("k1") == record
    await services.api_keys.add(ApiKeyRecord("k2", "other", "team-b", h("s2"), "", NOW + 1))
    assert [r.key_id for r in await services.api_keys.list("team-a")] == ["k1"]
    assert len(await services.api_keys.list()) == 2
    # Rotation shortens the old key's life to the grace period, never lengthens it.
    assert await services.api_keys.set_expiry("k1", NOW + 600, "k3")
    assert await services.api_keys.set_expiry("k1", NOW + 99999, "k3")
    rotated = await services.api_keys.get("k1")
    assert rotated is not None
    assert rotated.expires_at == NOW + 600
    assert rotated.replaced_by == "k3"
    await services.api_keys.touch({"k1": NOW + 5, "k2": NOW + 6})
    touched = await services.api_keys.get("k2")
    assert touched is not None
    assert touched.last_used_at == NOW + 6
    assert await services.api_keys.revoke("k1", NOW + 7)
    assert not await services.api_keys.revoke("k1", NOW + 8)


async def test_audit_trail(services: Services) -> None:
    events = [
        AuditEvent(
            NOW + i,
            "token.issued",
            "success",
            client_id=f"c{i % 2}",
            subject="u1",
            fingerprint=os.urandom(4).hex(),
            detail={"scope": "api"},
        )
        for i in range(10)
    ]
    await services.audit.append(events)
    await services.audit.append([])
    newest = await services.audit.query(AuditQuery(limit=3))
    assert [e.at for e in newest] == [NOW + 9, NOW + 8, NOW + 7]
    assert newest[0].detail == {"scope": "api"}
    assert len(await services.audit.query(AuditQuery(client_id="c1"))) == 5
    assert len(await services.audit.query(AuditQuery(since=NOW + 8))) == 2
    assert await services.audit.query(AuditQuery(subject="x' OR 1=1 --")) == []
    assert await services.audit.purge(NOW + 5) == 5


async def test_client_lookups_are_cached_for_a_second(services: Services) -> None:
    """Another process's change shows within CLIENT_CACHE_SECONDS; this store's own at once."""
    ticks = [100.0]
    store = SqlClientStore(services.engine, monotonic=lambda: ticks[0])
    other = SqlClientStore(services.engine)  # stands in for the CLI or another node
    pepper = services.master.pepper
    client = NewClient("cached", grant_types=("client_credentials",)).validated(
        generate_client_id(), keyed_hash(pepper, "one"), NOW, offered=OFFERED
    )
    await store.add(client)
    assert await store.get(client.client_id) == client
    await other.replace_secret(client.client_id, keyed_hash(pepper, "two"), None, NOW)
    assert await store.get(client.client_id) == client  # still the copy read a moment ago
    ticks[0] += CLIENT_CACHE_SECONDS
    fresh = await store.get(client.client_id)
    assert fresh is not None
    assert fresh.secret_hash == keyed_hash(pepper, "two")

    await store.replace_secret(client.client_id, keyed_hash(pepper, "three"), None, NOW)
    rotated = await store.get(client.client_id)  # its own change: no wait
    assert rotated is not None
    assert rotated.secret_hash == keyed_hash(pepper, "three")
    assert await store.delete(client.client_id)
    assert await store.get(client.client_id) is None

    assert await store.get("unknown") is None
    await other.add(replace(client, client_id="unknown"))
    assert await store.get("unknown") is None  # a miss is kept as long as a hit (SECURITY 31)
    ticks[0] += CLIENT_CACHE_SECONDS
    assert await store.get("unknown") is not None
