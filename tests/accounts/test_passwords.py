"""Every login refusal costs the same (SECURITY 63), and password hashing is bounded (57).

Timing on a shared 2-core VM is noise, so the tests check the mechanism: a counting hasher
shows that every path, refused or not, runs exactly one Argon2id verification.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokensmith.accounts import users as users_module
from tokensmith.accounts.users import MAX_PASSWORD_LENGTH, User, authenticate_user
from tokensmith.core.concurrency import Busy, Slots

pytestmark = pytest.mark.anyio


class CountingHasher(PasswordHasher):
    """Cheap Argon2id parameters, and a count of verifications and of the lengths verified."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified: list[int] = []
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._lock:
            self.verified.append(len(password))
        return super().verify(hash, password)


class Users:
    """An in-memory UserStore with the lookups the login makes."""

    def __init__(self, *users: User) -> None:
        self.by_name = {u.username: u for u in users}

    async def get_by_username(self, username: str) -> User | None:
        return self.by_name.get(username)


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    counting = CountingHasher()
    monkeypatch.setattr(users_module, "_hasher", counting)
    monkeypatch.setattr(users_module, "_dummy_hash", None)
    return counting


def user(hasher: CountingHasher, name: str, *, disabled: bool = False) -> User:
    return User(name, name, None, hasher.hash("correct horse battery"), 0, 0, disabled=disabled)


def store(hasher: CountingHasher) -> Users:
    return Users(user(hasher, "alice"), user(hasher, "dora", disabled=True))


REFUSALS = {
    "unknown user": ("mallory", "correct horse battery"),
    "wrong password": ("alice", "wrong password"),
    "over-long password, known user": ("alice", "x" * (MAX_PASSWORD_LENGTH + 1)),
    "over-long password, unknown user": ("mallory", "x" * (MAX_PASSWORD_LENGTH + 1)),
    "very long password": ("alice", "x" * 60_000),
    "disabled user, right password": ("dora", "correct horse battery"),
    "malformed username": ("not a name!", "correct horse battery"),
    "empty username": ("", "correct horse battery"),
    "empty password": ("alice", ""),
}


@pytest.mark.parametrize("case", REFUSALS)
async def test_every_refusal_runs_exactly_one_verification(
    hasher: CountingHasher, case: str
) -> None:
    users = store(hasher)
    await authenticate_user(users, "warm-up", "x")  # the dummy hash exists from here on
    hasher.verified.clear()
    username, password = REFUSALS[case]
    assert await authenticate_user(users, username, password) is None
    assert len(hasher.verified) == 1
    # Length cannot buy more work: what is verified is capped one over the limit.
    assert hasher.verified[0] <= MAX_PASSWORD_LENGTH + 1


async def test_a_right_password_runs_the_same_one_verification(hasher: CountingHasher) -> None:
    users = store(hasher)
    await authenticate_user(users, "warm-up", "x")
    hasher.verified.clear()
    found = await authenticate_user(users, "alice", "correct horse battery")
    assert found is not None and found.username == "alice"
    assert len(hasher.verified) == 1


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(username=st.text(max_size=200), password=st.text(max_size=2000))
def test_any_input_is_one_verification_and_never_an_error(
    hasher: CountingHasher, username: str, password: str
) -> None:
    users = store(hasher)
    hasher.verified.clear()
    result = asyncio.run(authenticate_user(users, username, password))
    assert result is None or password == "correct horse battery"
    assert len(hasher.verified) == 1


async def test_hashing_runs_in_bounded_slots_with_a_bounded_queue(hasher: CountingHasher) -> None:
    """Two slots, two waiting: a fifth sign-in at once is refused (Busy), not queued."""
    gate = threading.Event()
    original = hasher.verify

    def slow_verify(hash: str | bytes, password: str | bytes) -> bool:
        gate.wait(5)
        return original(hash, password)

    hasher.verify = slow_verify  # type: ignore[method-assign]
    users = store(hasher)
    users_module._dummy_hash = hasher.hash("nothing")
    slots = Slots(2, queue=2)
    running = [
        asyncio.create_task(authenticate_user(users, "alice", "wrong", slots)) for _ in range(4)
    ]
    await asyncio.sleep(0.05)
    assert slots.admitted == 4
    with pytest.raises(Busy):
        await authenticate_user(users, "alice", "wrong", slots)
    gate.set()
    assert await asyncio.gather(*running) == [None] * 4
    assert slots.admitted == 0
    assert len(hasher.verified) == 4  # the refused one never reached the hash


def test_slots_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        Slots(0, 1)
    with pytest.raises(ValueError):
        Slots(1, -1)
