"""The signing-key life cycle against real storage, on a clock the test moves."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import jwt as pyjwt
import pytest
from pydantic import SecretStr

from tokensmith.core.clock import FrozenClock
from tokensmith.core.sealing import MasterKey, generate_master_key
from tokensmith.errors import StartupError
from tokensmith.jose.jws import InvalidSignature, sign_jwt, verify_jwt
from tokensmith.jose.keyring import KeyRing, KeyRingError, RotationRefused
from tokensmith.persistence.repositories import SqlSigningKeyStore
from tokensmith.runtime.services import Services, open_services
from tokensmith.settings import Settings

pytestmark = pytest.mark.anyio


def ring(services: Services, clock: FrozenClock, **overrides: object) -> KeyRing:
    options: dict[str, object] = {
        "algorithm": "ES256",
        "max_token_lifetime": 300,
        "jwks_max_age": 60,
        "leeway": 30,
    }
    options.update(overrides)
    return KeyRing(SqlSigningKeyStore(services.engine), services.master, clock, **options)  # type: ignore[arg-type]


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


async def test_first_start_creates_active_and_next(services: Services) -> None:
    states = sorted(r.state for r in services.keyring.published())
    assert states == ["active", "next"]
    jwks = services.keyring.jwks()
    assert len(jwks["keys"]) == 2
    assert jwks["keys"][0]["kid"] == services.keyring.active.kid  # active first
    for jwk in jwks["keys"]:
        assert "d" not in jwk
        assert jwk["alg"] == "ES256"


async def test_private_keys_are_stored_sealed(services: Services) -> None:
    records = await SqlSigningKeyStore(services.engine).list_keys(("active", "next"))
    pem = services.keyring.active.private_pem()
    for record in records:
        assert record.private_sealed is not None
        assert b"PRIVATE KEY" not in record.private_sealed
        assert pem not in record.private_sealed


async def test_rotation_end_to_end(services: Services, clock: FrozenClock) -> None:
    keys = ring(services, clock)
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
    retired = await SqlSigningKeyStore(services.engine).list_keys(("retired",))
    assert [r.kid for r in retired] == [old.kid]
    assert retired[0].private_sealed is None  # the private half is destroyed


async def test_concurrent_rotations_make_one_step(services: Services, clock: FrozenClock) -> None:
    rings = [ring(services, clock) for _ in range(5)]
    for keys in rings:
        await keys.load()
    before = rings[0].active.kid
    clock.advance(61)
    await asyncio.gather(*(keys.rotate() for keys in rings), return_exceptions=True)
    store = SqlSigningKeyStore(services.engine)
    active = await store.list_keys(("active",))
    nxt = await store.list_keys(("next",))
    retiring = await store.list_keys(("retiring",))
    assert len(active) == 1
    assert len(nxt) == 1
    assert before in {r.kid for r in retiring}


async def test_scheduled_rotation(services: Services, clock: FrozenClock) -> None:
    keys = ring(services, clock)
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
    services: Services, clock: FrozenClock, alg: str
) -> None:
    keys = ring(services, clock, algorithm=alg)
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


async def test_wrong_master_key_never_replaces_keys(services: Services, clock: FrozenClock) -> None:
    store = SqlSigningKeyStore(services.engine)
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


async def test_altered_key_row_is_refused(services: Services, clock: FrozenClock) -> None:
    store = SqlSigningKeyStore(services.engine)
    active = (await store.list_keys(("active",)))[0]
    assert active.private_sealed is not None
    tampered = bytearray(active.private_sealed)
    tampered[-1] ^= 1
    await store.delete_key(active.kid, "active")
    await store.add_key(replace(active, private_sealed=bytes(tampered)))
    with pytest.raises(KeyRingError):
        await ring(services, clock).load()


async def test_services_refuse_a_database_sealed_with_another_key(
    services: Services, settings: Settings
) -> None:
    other = settings.model_copy(update={"master_key": SecretStr(generate_master_key())})
    with pytest.raises(StartupError, match="not the one this database was sealed with"):
        await open_services(other)
