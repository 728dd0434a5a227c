"""The grant's unit of work, on every backend: writes kept until the commit, all or nothing.

``TokenStore.transaction()`` gathers what the stores are handed it with; ``commit`` stores it in
one transaction, or nothing of it when a write fails or a guard does not hold; ``rotate`` stores
it with the claim, and claims nothing when it cannot be stored.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.persistence.conftest import NOW, Stores, h
from tests.persistence.test_grants import code
from tests.persistence.test_refresh import new_family, refresh
from tests.support import BACKENDS
from tokensmith.accounts.users import User
from tokensmith.oauth.tokens import IssuedToken, RefreshFamily
from tokensmith.persistence.memory import MemoryStores

pytestmark = [pytest.mark.anyio, pytest.mark.backends(*BACKENDS)]


def access(jti: str, family_id: str | None = None) -> IssuedToken:
    return IssuedToken(
        jti, "c1", "u1", "openid", "https://api", "jwt", NOW, NOW + 300, family_id=family_id
    )


async def add_user(stores: Stores, user_id: str = "u1", *, disabled: bool = False) -> User:
    user = User(user_id, user_id, None, "$argon2id$unused", NOW - 10, NOW - 10, disabled)
    await stores.users.add(user)
    return user


async def test_nothing_is_stored_before_the_commit(stores: Stores) -> None:
    tx = stores.tokens.transaction()
    family = RefreshFamily("f1", "c1", "u1", "openid", NOW)
    await stores.refresh.create_family(family, refresh(h("f1-0")), tx)
    await stores.tokens.add(access("j1", "f1"), tx)
    assert await stores.refresh.get(h("f1-0")) is None
    assert await stores.tokens.get_by_jti("j1") is None
    assert await tx.commit()
    assert await stores.refresh.get(h("f1-0")) is not None
    assert await stores.tokens.get_by_jti("j1") is not None


async def test_a_failing_write_stores_nothing_of_the_transaction(stores: Stores) -> None:
    await stores.tokens.add(access("taken"))
    tx = stores.tokens.transaction()
    await stores.refresh.create_family(
        RefreshFamily("f1", "c1", "u1", "x", NOW), refresh(h("a")), tx
    )
    await stores.tokens.add(access("taken"), tx)  # its key exists: the last write fails
    with pytest.raises(stores.duplicate):
        await tx.commit()
    assert await stores.refresh.get(h("a")) is None
    assert await stores.refresh.revoke_family("f1", NOW, "test") is False


async def test_a_guard_holds_for_an_unmarked_code_of_an_enabled_user(stores: Stores) -> None:
    await add_user(stores)
    await stores.codes.add(code(h("c")))
    tx = stores.tokens.transaction()
    await stores.tokens.add(access("j1"), tx)
    await stores.codes.guard_issue(h("c"), tx)
    assert await tx.commit()
    assert await stores.tokens.get_by_jti("j1") is not None


@pytest.mark.parametrize("why", ["replayed", "disabled user", "no user", "no code"])
async def test_a_guard_that_fails_stores_nothing(stores: Stores, why: str) -> None:
    await add_user(stores, disabled=why == "disabled user")
    user_id = "ghost" if why == "no user" else "u1"
    if why != "no code":
        await stores.codes.add(code(h("c"), user_id=user_id))
    if why == "replayed":
        await stores.codes.mark_replayed(h("c"), NOW + 1)
    tx = stores.tokens.transaction()
    await stores.refresh.create_family(
        RefreshFamily("f1", "c1", "u1", "x", NOW), refresh(h("a")), tx
    )
    await stores.tokens.add(access("j1", "f1"), tx)
    await stores.codes.guard_issue(h("c"), tx)
    assert not await tx.commit()
    assert await stores.refresh.get(h("a")) is None
    assert await stores.tokens.get_by_jti("j1") is None


async def test_a_rotation_stores_the_transaction_with_the_claim(stores: Stores) -> None:
    family = await new_family(stores)
    tx = stores.tokens.transaction()
    await stores.tokens.add(access("j1", "f1"), tx)
    result = await stores.refresh.rotate(
        h("f1-0"), refresh(h("f1-1")), NOW + 1, family=family, tx=tx
    )
    assert (result.outcome, result.family) == ("rotated", family)
    assert await stores.tokens.get_by_jti("j1") is not None


async def test_a_rotation_whose_transaction_cannot_be_stored_claims_nothing(
    stores: Stores,
) -> None:
    await new_family(stores)
    await stores.codes.add(code(h("c")))  # its user does not exist: the guard fails
    tx = stores.tokens.transaction()
    await stores.tokens.add(access("j1", "f1"), tx)
    await stores.codes.guard_issue(h("c"), tx)
    result = await stores.refresh.rotate(h("f1-0"), refresh(h("f1-1")), NOW + 1, tx=tx)
    assert result.outcome == "refused"
    found = await stores.refresh.get(h("f1-0"))
    assert found is not None and found[0].rotated_at is None
    assert await stores.refresh.get(h("f1-1")) is None
    assert await stores.tokens.get_by_jti("j1") is None
    broken = stores.tokens.transaction()
    await stores.tokens.add(access("j1", "f1"), broken)
    await stores.tokens.add(access("j1", "f1"), broken)
    with pytest.raises(stores.duplicate):
        await stores.refresh.rotate(h("f1-0"), refresh(h("f1-1")), NOW + 1, tx=broken)
    found = await stores.refresh.get(h("f1-0"))
    assert found is not None and found[0].rotated_at is None


async def test_a_family_the_caller_got_wrong_is_not_what_the_rotation_reports(
    stores: Stores,
) -> None:
    family = await new_family(stores)
    other = replace(family, family_id="elsewhere", subject="mallory")
    result = await stores.refresh.rotate(h("f1-0"), refresh(h("f1-1")), NOW + 1, family=other)
    assert (result.outcome, result.family) == ("rotated", family)


async def test_a_transaction_of_other_storage_is_refused(stores: Stores) -> None:
    elsewhere = MemoryStores().tokens.transaction()
    with pytest.raises(TypeError):
        await stores.tokens.add(access("j1"), elsewhere)
    with pytest.raises(TypeError):
        await stores.codes.guard_issue(h("c"), elsewhere)
    family = RefreshFamily("f1", "c1", "u1", "x", NOW)
    with pytest.raises(TypeError):
        await stores.refresh.create_family(family, refresh(h("a")), elsewhere)
    assert await stores.tokens.get_by_jti("j1") is None


async def test_a_token_comes_with_its_user_as_it_is_now(stores: Stores) -> None:
    await new_family(stores)
    assert await stores.refresh.get_with_subject(h("f1-0")) == (
        *((await stores.refresh.get(h("f1-0"))) or ()),
        None,
    )
    user = await add_user(stores)
    found = await stores.refresh.get_with_subject(h("f1-0"))
    assert found is not None and found[2] == user
    assert await stores.refresh.get_with_subject(h("unknown")) is None
