"""The access-token store's contract, on every backend: records, revocations and their reach."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.persistence.conftest import NOW, Stores, h
from tests.support import BACKENDS
from tokensmith.oauth.tokens import IssuedToken, RefreshFamily, RefreshToken

pytestmark = [pytest.mark.anyio, pytest.mark.backends(*BACKENDS)]


def jwt(jti: str, **overrides: object) -> IssuedToken:
    token = IssuedToken(jti, "c1", "u1", "api", "https://api", "jwt", NOW, NOW + 300)
    return replace(token, **overrides)  # type: ignore[arg-type]


async def test_issued_tokens_and_revocation(stores: Stores) -> None:
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
    await stores.tokens.add(token)
    await stores.tokens.add(
        IssuedToken("j2", "c1", "u1", "api", "https://api", "jwt", NOW, NOW + 300, family_id="f1")
    )
    assert await stores.tokens.get_by_hash(h("t1")) == token
    assert await stores.tokens.get_by_jti("j2") is not None
    assert await stores.tokens.revoke_by_code(h("code"), NOW + 1) == 1
    assert await stores.tokens.revoke_by_family("f1", NOW + 2) == 1  # j1 was already revoked
    revoked = await stores.tokens.get_by_jti("j1")
    assert revoked is not None
    assert revoked.revoked_at == NOW + 1
    assert not await stores.tokens.revoke("j1", NOW + 3)
    assert await stores.tokens.purge_expired(NOW + 301) == 2


async def test_a_jti_and_a_token_hash_are_stored_once(stores: Stores) -> None:
    await stores.tokens.add(jwt("j1", token_hash=h("t1"), format="opaque"))
    await stores.tokens.add(jwt("j2"))
    await stores.tokens.add(jwt("j3"))  # any number of JWTs have no hash
    with pytest.raises(stores.duplicate):
        await stores.tokens.add(jwt("j1"))
    with pytest.raises(stores.duplicate):
        await stores.tokens.add(jwt("j4", token_hash=h("t1"), format="opaque"))
    assert await stores.tokens.get_by_jti("j4") is None
    assert await stores.tokens.get_by_hash(h("unknown")) is None


async def test_a_revocation_is_recorded_even_for_a_token_never_stored(stores: Stores) -> None:
    await stores.tokens.add(jwt("stored"))
    await stores.tokens.record_revocation(jwt("stored"), NOW + 1)
    await stores.tokens.record_revocation(jwt("stored"), NOW + 2)  # the first time stands
    stored = await stores.tokens.get_by_jti("stored")
    assert stored is not None and stored.revoked_at == NOW + 1
    bare = jwt("bare", subject="u2", expires_at=NOW + 60)
    await stores.tokens.record_revocation(bare, NOW + 3)  # a JWT of the client_credentials grant
    assert await stores.tokens.get_by_jti("bare") == replace(bare, revoked_at=NOW + 3)
    await stores.tokens.record_revocation(bare, NOW + 4)
    again = await stores.tokens.get_by_jti("bare")
    assert again is not None and again.revoked_at == NOW + 3


async def test_revoking_a_clients_tokens_leaves_the_others(stores: Stores) -> None:
    for jti, client_id in (("a", "c1"), ("b", "c1"), ("c", "c2")):
        await stores.tokens.add(jwt(jti, client_id=client_id))
    assert await stores.tokens.revoke("a", NOW)
    assert await stores.tokens.revoke_for_client("c1", NOW + 1) == 1
    assert await stores.tokens.revoke_for_client("c1", NOW + 2) == 0
    revoked = {jti: (await stores.tokens.get_by_jti(jti)) for jti in "abc"}
    assert {jti: t.revoked_at for jti, t in revoked.items() if t} == {
        "a": NOW,
        "b": NOW + 1,
        "c": None,
    }
    assert not await stores.tokens.revoke("unknown", NOW)


async def test_a_code_revokes_the_tokens_of_the_families_it_began(stores: Stores) -> None:
    """The code's own token, and every token refreshed from a family the code began."""
    begun = RefreshFamily("f-code", "c1", "u1", "api", NOW, code_hash=h("code"))
    other = RefreshFamily("f-other", "c1", "u1", "api", NOW, code_hash=h("another code"))
    for family in (begun, other):
        first = RefreshToken(h(family.family_id), family.family_id, "api", NOW, NOW + 3600)
        await stores.refresh.create_family(family, first)
    await stores.tokens.add(jwt("with-code", code_hash=h("code"), family_id="f-code"))
    await stores.tokens.add(jwt("refreshed-1", family_id="f-code"))
    await stores.tokens.add(jwt("refreshed-2", family_id="f-code"))
    await stores.tokens.add(jwt("elsewhere", family_id="f-other"))
    assert await stores.tokens.revoke_by_code(h("code"), NOW + 1) == 3
    assert await stores.tokens.revoke_by_code(h("code"), NOW + 2) == 0
    elsewhere = await stores.tokens.get_by_jti("elsewhere")
    assert elsewhere is not None and elsewhere.revoked_at is None


async def test_records_expired_before_the_cut_are_purged_in_batches(stores: Stores) -> None:
    for i in range(3):
        await stores.tokens.add(jwt(f"old-{i}", expires_at=NOW - 1))
    await stores.tokens.add(jwt("at-the-cut", expires_at=NOW))
    assert await stores.tokens.purge_expired(NOW, limit=2) == 2
    assert await stores.tokens.purge_expired(NOW, limit=2) == 1
    assert await stores.tokens.purge_expired(NOW, limit=2) == 0
    assert await stores.tokens.get_by_jti("at-the-cut") is not None


async def test_claims_and_a_familys_dpop_key_are_kept(stores: Stores) -> None:
    """RFC 9449: an opaque token's cnf lives in its record; a public client's family keeps its key."""
    claims = {"cnf": {"jkt": "thumb"}, "act": {"sub": "svc"}}
    await stores.tokens.add(jwt("bound", format="opaque", token_hash=h("bound"), claims=claims))
    found = await stores.tokens.get_by_hash(h("bound"))
    assert found is not None and found.claims == claims
    plain = jwt("plain")
    await stores.tokens.add(plain)
    stored = await stores.tokens.get_by_jti("plain")
    assert stored is not None and stored.claims is None
    family = RefreshFamily("f-bound", "c1", "u1", "api", NOW, dpop_jkt="thumb")
    await stores.refresh.create_family(
        family, RefreshToken(h("rt"), "f-bound", "api", NOW, NOW + 60)
    )
    got = await stores.refresh.get(h("rt"))
    assert got is not None and got[1].dpop_jkt == "thumb"
    with_user = await stores.refresh.get_with_subject(h("rt"))
    assert with_user is not None and with_user[1].dpop_jkt == "thumb"
