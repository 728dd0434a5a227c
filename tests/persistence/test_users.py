"""The user store's contract, on every backend."""

from __future__ import annotations

import pytest

from tests.persistence.conftest import NOW, Stores
from tests.support import BACKENDS
from tokensmith.accounts.users import User, hash_password, verify_password

pytestmark = [pytest.mark.anyio, pytest.mark.backends(*BACKENDS)]


async def test_users(stores: Stores) -> None:
    user = User("u1", "alice", "alice@example.com", hash_password("correct horse"), NOW, NOW)
    await stores.users.add(user)
    stored = await stores.users.get_by_username("alice")
    assert stored == user
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert verify_password(stored.password_hash, "correct horse")
    assert not verify_password(stored.password_hash, "wrong horse")
    assert await stores.users.set_password("u1", hash_password("new password!"), NOW + 5)
    changed = await stores.users.get("u1")
    assert changed is not None
    assert changed.password_changed_at == NOW + 5
    assert await stores.users.get_by_username("ALICE") is None


async def test_ids_and_usernames_are_unique(stores: Stores) -> None:
    await stores.users.add(User("u1", "alice", None, "$h1", NOW, NOW))
    with pytest.raises(stores.duplicate):
        await stores.users.add(User("u1", "bob", None, "$h2", NOW, NOW))
    with pytest.raises(stores.duplicate):
        await stores.users.add(User("u2", "alice", None, "$h3", NOW, NOW))
    assert [u.user_id for u in await stores.users.list()] == ["u1"]
    assert not await stores.users.set_password("u2", "$h4", NOW)


async def test_users_are_listed_by_username(stores: Stores) -> None:
    for user_id, name in (("u1", "carol"), ("u2", "alice"), ("u3", "bob")):
        await stores.users.add(User(user_id, name, None, "$h", NOW, NOW, disabled=name == "bob"))
    listed = await stores.users.list()
    assert [u.username for u in listed] == ["alice", "bob", "carol"]
    assert [u.disabled for u in listed] == [False, True, False]
