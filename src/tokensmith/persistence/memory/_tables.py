"""What the in-memory stores share: the tables, a yield per call, and a duplicate-key error.

Each table is a dict keyed like the SQL table's primary key. A store method yields to the event
loop once, on entry, as a database round trip would, and never again: every check and the write
it guards then run without an ``await`` between them, so of any number of concurrent callers
exactly one wins a conditional write, as the SQL repositories' conditional updates ensure.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from tokensmith.accounts.sessions import Session
from tokensmith.accounts.users import User
from tokensmith.apikeys.records import ApiKeyRecord
from tokensmith.audit.events import AuditEvent
from tokensmith.jose.keyring import KeyRecord
from tokensmith.oauth.clients import Client
from tokensmith.oauth.device_grants import DeviceGrant
from tokensmith.oauth.grants import AuthorizationCode, Consent
from tokensmith.oauth.tokens import IssuedToken, RefreshFamily, RefreshToken

__all__ = [
    "PURGE_BATCH",
    "DuplicateKey",
    "MemoryTransaction",
    "Tables",
    "fresh",
    "joined",
    "json_copy",
    "round_trip",
]

# The same bound as persistence/repositories/_base.py (a test holds the two equal); not imported
# from there, so that nothing here loads SQLAlchemy.
PURGE_BATCH = 1000


class DuplicateKey(Exception):
    """An insert met an existing primary key or unique value: where SQL raises IntegrityError."""


@dataclass
class Tables:
    """One database's worth of rows; every store made over the same Tables sees the others'."""

    server_meta: dict[str, bytes] = field(default_factory=dict)
    signing_keys: dict[str, KeyRecord] = field(default_factory=dict)
    clients: dict[str, Client] = field(default_factory=dict)
    client_assertions: dict[tuple[str, str], int] = field(default_factory=dict)
    dpop_proofs: dict[bytes, int] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    sessions: dict[bytes, Session] = field(default_factory=dict)
    consents: dict[tuple[str, str], Consent] = field(default_factory=dict)
    authorization_codes: dict[bytes, AuthorizationCode] = field(default_factory=dict)
    device_grants: dict[bytes, DeviceGrant] = field(default_factory=dict)
    refresh_families: dict[str, RefreshFamily] = field(default_factory=dict)
    refresh_tokens: dict[bytes, RefreshToken] = field(default_factory=dict)
    issued_tokens: dict[str, IssuedToken] = field(default_factory=dict)
    api_keys: dict[str, ApiKeyRecord] = field(default_factory=dict)
    audit_events: dict[int, AuditEvent] = field(default_factory=dict)
    last_event_id: int = 0


async def round_trip() -> None:
    """Where a database call would wait on the network: other tasks run here, and only here."""
    await asyncio.sleep(0)


def json_copy(value: Any) -> Any:
    """A JSON column's value as the database gives it back: a fresh copy, through JSON."""
    return json.loads(json.dumps(value))


def fresh(value: Any) -> Any:
    """A stored dict or list, copied on the way out, so a caller's change never reaches the row."""
    return copy.deepcopy(value)


class MemoryTransaction:
    """``oauth.transactions.Transaction`` over one ``Tables``: writes kept until the commit.

    The commit applies the writes, then checks the guards, with no ``await`` in between (as one
    SQL transaction); if a write raises or a guard does not hold, every table is put back as it
    was, so nothing of the transaction remains.
    """

    __slots__ = ("_guards", "_writes", "tables")

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self._writes: list[Callable[[], None]] = []
        self._guards: list[Callable[[], bool]] = []

    def write(self, apply: Callable[[], None]) -> None:
        self._writes.append(apply)

    def guard(self, holds: Callable[[], bool]) -> None:
        self._guards.append(holds)

    async def commit(self) -> bool:
        await round_trip()
        return self.apply()

    def apply(self, first: Callable[[], None] | None = None) -> bool:
        """``first`` (a store's own write), then the transaction's; all or nothing."""
        saved = {name: dict(rows) for name, rows in _dicts(self.tables)}
        try:
            for write in (first, *self._writes) if first else self._writes:
                write()
            if all(holds() for holds in self._guards):
                return True
        except BaseException:
            _restore(self.tables, saved)
            raise
        _restore(self.tables, saved)
        return False


def joined(tables: Tables, tx: object) -> MemoryTransaction:
    """``tx`` as a memory transaction over ``tables``, refused if it is another's."""
    if not isinstance(tx, MemoryTransaction) or tx.tables is not tables:
        raise TypeError("a transaction on other tables")
    return tx


def _dicts(tables: Tables) -> list[tuple[str, dict[Any, Any]]]:
    return [(f.name, getattr(tables, f.name)) for f in fields(tables) if f.name != "last_event_id"]


def _restore(tables: Tables, saved: dict[str, dict[Any, Any]]) -> None:
    for name, rows in _dicts(tables):
        rows.clear()  # in place: every store holds these very dicts
        rows.update(saved[name])
