"""The login-session store's contract, on every backend."""

from __future__ import annotations

import pytest

from tests.persistence.conftest import NOW, Stores, h
from tests.support import BACKENDS
from tokensmith.accounts.sessions import Session

pytestmark = [pytest.mark.anyio, pytest.mark.backends(*BACKENDS)]


def session(name: str, user_id: str = "u1", expires_at: int = NOW + 3600) -> Session:
    return Session(h(name), user_id, NOW - 5, "pwd", NOW, expires_at)


async def test_a_session_ends_once(stores: Stores) -> None:
    await stores.sessions.add(session("s1"))
    stored = await stores.sessions.get(h("s1"))
    assert stored == session("s1") and stored.live(NOW)
    assert await stores.sessions.end(h("s1"), NOW + 10)
    assert not await stores.sessions.end(h("s1"), NOW + 20)
    ended = await stores.sessions.get(h("s1"))
    assert ended is not None and ended.ended_at == NOW + 10 and not ended.live(NOW + 11)
    assert not await stores.sessions.end(h("unknown"), NOW)
    assert await stores.sessions.get(h("unknown")) is None
    with pytest.raises(stores.duplicate):
        await stores.sessions.add(session("s1"))


async def test_every_open_session_of_a_user_ends(stores: Stores) -> None:
    for name, user_id in (("a", "u1"), ("b", "u1"), ("c", "u1"), ("d", "u2")):
        await stores.sessions.add(session(name, user_id))
    await stores.sessions.end(h("c"), NOW + 1)
    assert await stores.sessions.end_for_user("u1", NOW + 2) == 2  # c was ended already
    for name, ended_at in (("a", NOW + 2), ("b", NOW + 2), ("c", NOW + 1), ("d", None)):
        stored = await stores.sessions.get(h(name))
        assert stored is not None and stored.ended_at == ended_at
    assert await stores.sessions.end_for_user("u1", NOW + 3) == 0


async def test_sessions_over_before_the_cut_are_purged_in_batches(stores: Stores) -> None:
    for i in range(3):
        await stores.sessions.add(session(f"expired-{i}", expires_at=NOW - 1))
    await stores.sessions.add(session("ended"))
    await stores.sessions.end(h("ended"), NOW - 1)
    await stores.sessions.add(session("ends-at-the-cut", expires_at=NOW))
    await stores.sessions.add(session("ended-at-the-cut"))
    await stores.sessions.end(h("ended-at-the-cut"), NOW)
    await stores.sessions.add(session("open"))
    assert await stores.sessions.purge_ended(NOW, limit=3) == 3
    assert await stores.sessions.purge_ended(NOW, limit=3) == 1
    assert await stores.sessions.purge_ended(NOW) == 0
    for kept in ("ends-at-the-cut", "ended-at-the-cut", "open"):
        assert await stores.sessions.get(h(kept)) is not None
