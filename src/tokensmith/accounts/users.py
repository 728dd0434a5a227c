"""Users and their passwords. Argon2id (RFC 9106) is for human passwords only; never for tokens."""

from __future__ import annotations

import asyncio
import re
import secrets
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tokensmith.core.concurrency import Slots

__all__ = [
    "User",
    "UserStore",
    "authenticate_user",
    "hash_password",
    "validate_username",
    "verify_password",
]

_hasher = PasswordHasher()  # argon2-cffi's defaults follow RFC 9106's second recommendation
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    username: str
    email: str | None
    password_hash: str = field(repr=False)
    created_at: int
    password_changed_at: int
    disabled: bool = False


def new_user_id() -> str:
    return secrets.token_hex(12)


def validate_username(username: str) -> str:
    if not _USERNAME.match(username):
        raise ValueError("a username is 1 to 128 letters, digits or . _ @ + -")
    return username


def hash_password(password: str) -> str:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ValueError(f"a password is {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


_dummy_hash: str | None = None


async def authenticate_user(
    users: UserStore, username: str, password: str, slots: Slots | None = None
) -> User | None:
    """The user, if the password is right.

    Every refusal costs the same one Argon2id verification (SECURITY 63): a malformed or unknown
    name, and an over-long password for any name, are checked against a dummy hash instead of
    the user's own; a wrong password and a disabled user against their own. An over-long
    password is cut to one character over the limit first, so its length cannot buy more work.
    Argon2id takes tens of milliseconds of CPU, so it runs in a worker thread, off the event
    loop, in one of ``slots`` (``Busy`` if they and their queue are full).
    """
    user = await users.get_by_username(username) if _USERNAME.match(username) else None
    genuine = user is not None and len(password) <= MAX_PASSWORD_LENGTH
    target = user.password_hash if user is not None and genuine else await _dummy(slots)
    matched = await _verify(slots, target, password[: MAX_PASSWORD_LENGTH + 1])
    return user if user is not None and genuine and matched and not user.disabled else None


async def _dummy(slots: Slots | None) -> str:
    """A hash of nothing anyone knows, made once, for refusals that have no hash of their own."""
    global _dummy_hash
    if _dummy_hash is None:
        async with _slot(slots):
            _dummy_hash = await asyncio.to_thread(_hasher.hash, secrets.token_hex(16))
    return _dummy_hash


async def _verify(slots: Slots | None, password_hash: str, password: str) -> bool:
    async with _slot(slots):
        return await asyncio.to_thread(verify_password, password_hash, password)


def _slot(slots: Slots | None) -> AbstractAsyncContextManager[None]:
    return slots.hold() if slots is not None else nullcontext()


class UserStore(Protocol):
    async def add(self, user: User) -> None: ...

    async def get(self, user_id: str) -> User | None: ...

    async def get_by_username(self, username: str) -> User | None: ...

    async def list(self) -> list[User]: ...

    async def set_password(self, user_id: str, password_hash: str, now: int) -> bool: ...
