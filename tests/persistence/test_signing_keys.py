"""The signing-key store's contract on every backend, and the key life cycle on top of it.

The store allows one active and one next key, and moves them together or not at all; the ring
(``jose/keyring.py``) runs its whole life cycle on a clock the test moves.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import jwt as pyjwt
import pytest

from tests.persistence.conftest import NOW, Stores
from tests.support import BACKENDS
from tokensmith.core.clock import FrozenClock
from tokensmith.core.sealing import MasterKey, generate_master_key
from tokensmith.jose.jws import InvalidSignature, sign_jwt, verify_jwt
from tokensmith.jose.keyring import KeyRecord, KeyRing, KeyRingError, KeyState, RotationRefused

pytestmark = [pytest.mark.anyio, pytest.mark.backends(*BACKENDS)]


def record(kid: str, state: KeyState, created_at: int = NOW, **fields: object) -> KeyRecord:
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": kid, "kid": kid, "alg": "Ed25519"}
    values: dict[str, object] = {"private_sealed": b"sealed-" + kid.encode(), **fields}
    return KeyRecord(kid, "Ed25519", state, jwk, created_at=created_at, **values)  # type: ignore[arg-type]


async def test_one_active_key_and_one_next_key_at_most(stores: Stores) -> None:
    keys = stores.signing_keys
    assert await keys.add_key(record("a1", "active"))
    assert not await keys.add_key(record("a2", "active"))
    assert await keys.add_key(record("n1", "next", NOW + 1))
    assert not await keys.add_key(record("n2", "next"))
    assert not await keys.add_key(record("a1", "retiring"))  # the kid is taken
    assert await keys.add_key(record("r1", "retiring", NOW - 10, publish_until=NOW))
    assert await keys.add_key(record("r2", "retiring", NOW - 20, publish_until=NOW + 5))
    listed = await keys.list_keys(("active", "next", "retiring"))
    assert [r.kid for r in listed] == ["n1", "a1", "r1", "r2"]  # newest first
    assert listed[1] == record("a1", "active")
    assert await keys.list_keys(("retired",)) == []


async def test_a_key_is_deleted_only_in_the_state_named(stores: Stores) -> None:
    await stores.signing_keys.add_key(record("n1", "next"))
    assert not await stores.signing_keys.delete_key("n1", "active")
    assert await stores.signing_keys.delete_key("n1", "next")
    assert not await stores.signing_keys.delete_key("n1", "next")
    assert await stores.signing_keys.add_key(record("n2", "next"))  # the place is free again


async def test_a_promotion_moves_both_keys_or_neither(stores: Stores) -> None:
    keys = stores.signing_keys
    await keys.add_key(record("a1", "active", activated_at=NOW))
    await keys.add_key(record("n1", "next"))
    assert not await keys.promote("n1", "n1", NOW + 1, NOW + 9)  # n1 is not the active key
    assert not await keys.promote("a1", "a1", NOW + 1, NOW + 9)  # a1 is not the next key
    assert not await keys.promote("unknown", "a1", NOW + 1, NOW + 9)
    unchanged = {r.kid: r.state for r in await keys.list_keys(("active", "next", "retiring"))}
    assert unchanged == {"a1": "active", "n1": "next"}
    assert await keys.promote("n1", "a1", NOW + 1, NOW + 9)
    retiring, active = await keys.list_keys(("retiring",)), await keys.list_keys(("active",))
    assert [(r.kid, r.retiring_at, r.publish_until) for r in retiring] == [("a1", NOW + 1, NOW + 9)]
    assert [(r.kid, r.activated_at) for r in active] == [("n1", NOW + 1)]
    assert not await keys.promote("n1", "a1", NOW + 2, NOW + 9)  # done already: a lost race


async def test_the_first_promotion_has_no_active_key_to_retire(stores: Stores) -> None:
    await stores.signing_keys.add_key(record("n1", "next"))
    assert await stores.signing_keys.promote("n1", None, NOW, NOW + 9)
    assert [r.kid for r in await stores.signing_keys.list_keys(("active",))] == ["n1"]
    assert await stores.signing_keys.list_keys(("retiring",)) == []


async def test_retired_keys_lose_their_private_half(stores: Stores) -> None:
    keys = stores.signing_keys
    await keys.add_key(record("r1", "retiring", publish_until=NOW))
    await keys.add_key(record("r2", "retiring", publish_until=NOW + 1))
    await keys.add_key(record("a1", "active"))
    assert await keys.retire_expired(NOW) == ["r1"]
    assert await keys.retire_expired(NOW) == []
    (retired,) = await keys.list_keys(("retired",))
    assert (retired.kid, retired.private_sealed) == ("r1", None)
    assert retired.public_jwk == record("r1", "retiring").public_jwk  # still verifiable
    assert [r.kid for r in await keys.list_keys(("retiring",))] == ["r2"]


# -- the life cycle on the store (jose/keyring.py) ----------------------------------------------


def ring(stores: Stores, clock: FrozenClock, **overrides: object) -> KeyRing:
    options: dict[str, object] = {
        "algorithm": "ES256",
        "max_token_lifetime": 300,
        "jwks_max_age": 60,
        "leeway": 30,
    }
    options.update(overrides)
    return KeyRing(stores.signing_keys, stores.master, clock, **options)  # type: ignore[arg-type]


@pytest.fixture
async def started(stores: Stores, clock: FrozenClock) -> Stores:
    """The keys a first start makes (``open_services`` ensures them the same way)."""
    await ring(stores, clock).ensure()
    return stores


def verify_with_jwks(token: str, jwks: dict[str, object]) -> dict[str, object]:
    """What any relying party does: nothing but the published JWKS, via PyJWT."""
    keys = pyjwt.PyJWKSet.from_dict(jwks)
    kid = pyjwt.get_unverified_header(token)["kid"]
    match = [k for k in keys.keys if k.key_id == kid]
    if not match:
        raise InvalidSignature("kid not published")
    # The clock here is frozen in the past: this checks signatures and publication, not expiry.
    options = {"verify_exp": False}
    return pyjwt.decode(token, match[0].key, algorithms=[match[0].algorithm_name], options=options)


async def test_a_first_start_makes_an_active_and_a_next_key_stored_sealed(
    started: Stores, clock: FrozenClock
) -> None:
    keys = ring(started, clock)
    await keys.ensure()  # a second start fills no gap: there is none
    assert sorted(r.state for r in keys.published()) == ["active", "next"]
    records = await started.signing_keys.list_keys(("active", "next"))
    assert len(records) == 2
    pem = keys.active.private_pem()
    for stored in records:
        assert stored.private_sealed is not None
        assert b"PRIVATE KEY" not in stored.private_sealed
        assert pem not in stored.private_sealed


async def test_rotation_end_to_end(started: Stores, clock: FrozenClock) -> None:
    keys = ring(started, clock)
    await keys.load()
    old = keys.active
    token = sign_jwt(old, {"sub": "u1", "exp": clock.now() + 300}, typ="at+jwt")

    with pytest.raises(RotationRefused):
        await keys.rotate()  # the next key is younger than the JWKS cache lifetime
    clock.advance(61)
    new = await keys.rotate()
    assert new.kid != old.kid
    assert keys.active.kid == new.kid
    retiring = keys.record_for(old.kid)
    assert retiring.state == "retiring"
    assert retiring.publish_until == clock.now() + 330
    assert sorted(r.state for r in keys.published()) == ["active", "next", "retiring"]

    # A token signed before the rotation still verifies, with our verifier and with PyJWT.
    verify_jwt(token, keys.verification_keys())
    assert verify_with_jwks(token, keys.jwks())["sub"] == "u1"

    clock.advance(329)
    await keys.maintain(None)
    verify_with_jwks(token, keys.jwks())
    clock.advance(1)
    await keys.maintain(None)
    assert old.kid not in {k["kid"] for k in keys.jwks()["keys"]}
    with pytest.raises(InvalidSignature):
        verify_jwt(token, keys.verification_keys())
    with pytest.raises(InvalidSignature):
        verify_with_jwks(token, keys.jwks())
    retired = await started.signing_keys.list_keys(("retired",))
    assert [r.kid for r in retired] == [old.kid]
    assert retired[0].private_sealed is None  # the private half is destroyed


async def test_concurrent_rotations_make_one_step(started: Stores, clock: FrozenClock) -> None:
    rings = [ring(started, clock) for _ in range(5)]
    for keys in rings:
        await keys.load()
    before = rings[0].active.kid
    clock.advance(61)
    await asyncio.gather(*(keys.rotate() for keys in rings), return_exceptions=True)
    store = started.signing_keys
    active = await store.list_keys(("active",))
    nxt = await store.list_keys(("next",))
    retiring = await store.list_keys(("retiring",))
    assert len(active) == 1
    assert len(nxt) == 1
    assert before in {r.kid for r in retiring}


async def test_scheduled_rotation(started: Stores, clock: FrozenClock) -> None:
    keys = ring(started, clock)
    await keys.load()
    first = keys.active.kid
    clock.advance(3599)
    await keys.maintain(3600)
    assert keys.active.kid == first
    clock.advance(1)
    await keys.maintain(3600)
    assert keys.active.kid != first


@pytest.mark.parametrize("alg", ["Ed25519", "EdDSA", "RS256"])
async def test_algorithm_change_takes_effect_at_next_rotation(
    started: Stores, clock: FrozenClock, alg: str
) -> None:
    keys = ring(started, clock, algorithm=alg)
    await keys.maintain(None)  # replaces the unused next key with one of the new algorithm
    by_state = {r.state: r for r in keys.published()}
    assert by_state["active"].alg == "ES256"
    assert by_state["next"].alg == alg
    clock.advance(61)
    await keys.rotate()
    token = sign_jwt(keys.active, {"sub": "x"})
    assert verify_jwt(token, keys.verification_keys())[0]["alg"] == alg
    if alg != "Ed25519":  # PyJWT predates RFC 9864's name
        verify_with_jwks(token, keys.jwks())


async def test_wrong_master_key_never_replaces_keys(started: Stores, clock: FrozenClock) -> None:
    store = started.signing_keys
    before = await store.list_keys(("active", "next"))
    stranger = KeyRing(
        store,
        MasterKey.from_text(generate_master_key()),
        clock,
        algorithm="ES256",
        max_token_lifetime=300,
        jwks_max_age=60,
    )
    with pytest.raises(KeyRingError, match="does not open"):
        await stranger.ensure()
    assert await store.list_keys(("active", "next")) == before


async def test_altered_key_row_is_refused(started: Stores, clock: FrozenClock) -> None:
    store = started.signing_keys
    active = (await store.list_keys(("active",)))[0]
    assert active.private_sealed is not None
    tampered = bytearray(active.private_sealed)
    tampered[-1] ^= 1
    await store.delete_key(active.kid, "active")
    await store.add_key(replace(active, private_sealed=bytes(tampered)))
    with pytest.raises(KeyRingError):
        await ring(started, clock).load()
