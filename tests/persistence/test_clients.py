"""The client store's contract, on every backend: secrets, rotation, leaks, the right to vouch."""

from __future__ import annotations

import pytest

from tests.persistence.conftest import NOW, Stores
from tests.support import BACKENDS, OFFERED
from tokensmith.core.secrets import keyed_hash
from tokensmith.oauth.clients import (
    Client,
    NewClient,
    generate_client_id,
    generate_client_secret,
    secret_matches,
)

pytestmark = [pytest.mark.anyio, pytest.mark.backends(*BACKENDS)]


def service(client_id: str, secret_hash: bytes | None = b"h" * 32, at: int = NOW) -> Client:
    return NewClient("svc", grant_types=("client_credentials",)).validated(
        client_id, secret_hash, at, offered=OFFERED
    )


async def test_clients_round_trip_and_secret_rotation(stores: Stores) -> None:
    pepper = stores.pepper
    secret = generate_client_secret()
    client = NewClient(
        "Orders API",
        grant_types=("client_credentials",),
        scope="orders:read orders:write",
    ).validated(generate_client_id(), keyed_hash(pepper, secret), NOW, offered=OFFERED)
    await stores.clients.add(client)
    stored = await stores.clients.get(client.client_id)
    assert stored == client
    assert await stores.clients.get("nope' OR '1'='1") is None
    assert secret_matches(stored, pepper, secret, NOW)
    assert not secret_matches(stored, pepper, secret + "x", NOW)

    new_secret = generate_client_secret()
    assert await stores.clients.replace_secret(
        client.client_id, keyed_hash(pepper, new_secret), NOW + 3600, NOW
    )
    rotated = await stores.clients.get(client.client_id)
    assert rotated is not None
    assert secret_matches(rotated, pepper, new_secret, NOW)
    assert secret_matches(rotated, pepper, secret, NOW + 3599)  # inside the grace period
    assert not secret_matches(rotated, pepper, secret, NOW + 3600)  # after it

    strict = generate_client_secret()
    await stores.clients.replace_secret(client.client_id, keyed_hash(pepper, strict), None, NOW)
    again = await stores.clients.get(client.client_id)
    assert again is not None
    assert not secret_matches(again, pepper, new_secret, NOW)

    assert [c.client_id for c in await stores.clients.list()] == [client.client_id]
    assert await stores.clients.delete(client.client_id)
    assert not await stores.clients.delete(client.client_id)


async def test_a_grace_period_already_over_keeps_no_previous_secret(stores: Stores) -> None:
    await stores.clients.add(service("c1", b"1" * 32))
    assert await stores.clients.replace_secret("c1", b"2" * 32, NOW, NOW + 5)  # ends at once
    stored = await stores.clients.get("c1")
    assert stored is not None
    assert (stored.secret_hash, stored.previous_secret_hash) == (b"2" * 32, None)
    assert stored.previous_secret_expires_at is None and stored.updated_at == NOW + 5
    assert not await stores.clients.replace_secret("nobody", b"3" * 32, None, NOW)


async def test_a_leaked_secret_is_found_and_revoked_alone(stores: Stores) -> None:
    pepper = stores.pepper
    old, new = generate_client_secret(), generate_client_secret()
    client = NewClient("leaky", grant_types=("client_credentials",)).validated(
        "c-leak", keyed_hash(pepper, old), NOW, offered=OFFERED
    )
    await stores.clients.add(client)
    await stores.clients.replace_secret("c-leak", keyed_hash(pepper, new), NOW + 3600, NOW)
    for secret in (old, new):
        found = await stores.clients.find_by_secret(keyed_hash(pepper, secret))
        assert found is not None and found.client_id == "c-leak"
    assert await stores.clients.find_by_secret(keyed_hash(pepper, "unknown")) is None
    assert await stores.clients.revoke_secret("c-leak", keyed_hash(pepper, old), NOW + 1)
    stored = await stores.clients.get("c-leak")
    assert stored is not None
    assert not secret_matches(stored, pepper, old, NOW + 2)
    assert secret_matches(stored, pepper, new, NOW + 2)  # the other secret keeps working
    assert not await stores.clients.revoke_secret("c-leak", keyed_hash(pepper, old), NOW + 3)
    assert await stores.clients.revoke_secret("c-leak", keyed_hash(pepper, new), NOW + 4)
    stored = await stores.clients.get("c-leak")
    assert stored is not None and not secret_matches(stored, pepper, new, NOW + 5)
    assert stored.updated_at == NOW + 4
    assert not await stores.clients.revoke_secret("nobody", keyed_hash(pepper, new), NOW)


async def test_public_client_has_no_secret_to_replace(stores: Stores) -> None:
    client = NewClient("CLI", is_public=True, redirect_uris=("http://127.0.0.1/cb",)).validated(
        generate_client_id(), None, NOW, offered=OFFERED
    )
    await stores.clients.add(client)
    assert client.grant_types == ("authorization_code", "refresh_token")
    assert not await stores.clients.replace_secret(client.client_id, b"x" * 32, None, NOW)
    stored = await stores.clients.get(client.client_id)
    assert stored is not None
    assert not secret_matches(stored, stores.pepper, "", NOW)


async def test_vouching_is_off_unless_granted_and_can_be_withdrawn(stores: Stores) -> None:
    plain = NewClient("svc", grant_types=("client_credentials",)).validated(
        generate_client_id(), b"h" * 32, NOW, offered=OFFERED
    )
    gateway = NewClient(
        "gateway", grant_types=("client_credentials",), may_vouch_client_ip=True
    ).validated(generate_client_id(), b"g" * 32, NOW, offered=OFFERED)
    for client in (plain, gateway):
        await stores.clients.add(client)
    stored = {c.client_id: c.may_vouch_client_ip for c in await stores.clients.list()}
    assert stored == {plain.client_id: False, gateway.client_id: True}

    assert await stores.clients.set_may_vouch_client_ip(plain.client_id, True, NOW + 1)
    assert await stores.clients.set_may_vouch_client_ip(gateway.client_id, False, NOW + 1)
    granted = await stores.clients.get(plain.client_id)
    withdrawn = await stores.clients.get(gateway.client_id)
    assert granted is not None and granted.may_vouch_client_ip and granted.updated_at == NOW + 1
    assert withdrawn is not None and not withdrawn.may_vouch_client_ip
    assert not await stores.clients.set_may_vouch_client_ip("nobody", True, NOW)


async def test_a_public_client_never_vouches(stores: Stores) -> None:
    public = NewClient("spa", is_public=True, redirect_uris=("https://spa.test/cb",)).validated(
        generate_client_id(), None, NOW, offered=OFFERED
    )
    await stores.clients.add(public)
    assert not await stores.clients.set_may_vouch_client_ip(public.client_id, True, NOW)
    stored = await stores.clients.get(public.client_id)
    assert stored is not None and not stored.may_vouch_client_ip


async def test_an_id_is_registered_once(stores: Stores) -> None:
    await stores.clients.add(service("c1"))
    with pytest.raises(stores.duplicate):
        await stores.clients.add(service("c1", b"other" * 6 + b"xx"))
    stored = await stores.clients.get("c1")
    assert stored is not None and stored.secret_hash == b"h" * 32


async def test_clients_are_listed_oldest_first_then_by_id(stores: Stores) -> None:
    for client_id, at in (("c", NOW), ("a", NOW + 1), ("b", NOW)):
        await stores.clients.add(service(client_id, at=at))
    assert [c.client_id for c in await stores.clients.list()] == ["b", "c", "a"]


async def test_a_jwks_comes_back_as_it_was_stored(stores: Stores) -> None:
    jwks = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "abc", "kid": "k1", "alg": "EdDSA"}]}
    client = NewClient(
        "signer", grant_types=("client_credentials",), auth_method="private_key_jwt", jwks=jwks
    ).validated("c-jwt", None, NOW, offered=OFFERED)
    await stores.clients.add(client)
    jwks["keys"].clear()  # the caller's dict, changed after the insert
    stored = await stores.clients.get("c-jwt")
    assert stored is not None and stored.jwks is not None
    assert stored.jwks["keys"][0]["kid"] == "k1"


async def test_dpop_bound_access_tokens_is_kept_and_can_be_changed(stores: Stores) -> None:
    bound = NewClient(
        "bound", grant_types=("client_credentials",), dpop_bound_access_tokens=True
    ).validated(generate_client_id(), b"h" * 32, NOW, offered=OFFERED)
    await stores.clients.add(bound)
    stored = await stores.clients.get(bound.client_id)
    assert stored is not None and stored.dpop_bound_access_tokens
    assert await stores.clients.set_dpop_bound_access_tokens(bound.client_id, False, NOW + 1)
    changed = await stores.clients.get(bound.client_id)
    assert changed is not None and not changed.dpop_bound_access_tokens
    assert changed.updated_at == NOW + 1
    assert not await stores.clients.set_dpop_bound_access_tokens("nobody", True, NOW)
