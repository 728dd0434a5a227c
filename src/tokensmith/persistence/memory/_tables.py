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
from dataclasses import dataclass, field
from typing import Any

from tokensmith.accounts.sessions import Session
from tokensmith.accounts.users import User
from tokensmith.apikeys.records import ApiKeyRecord
from tokensmith.audit.events import AuditEvent
from tokensmith.jose.keyring import KeyRecord
from tokensmith.oauth.clients import Client
from tokensmith.oauth.grants import AuthorizationCode, Consent
from tokensmith.oauth.tokens import IssuedToken, RefreshFamily, RefreshToken

__all__ = ["PURGE_BATCH", "DuplicateKey", "Tables", "fresh", "json_copy", "round_trip"]

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
    users: dict[str, User] = field(default_factory=dict)
    sessions: dict[bytes, Session] = field(default_factory=dict)
    consents: dict[tuple[str, str], Consent] = field(default_factory=dict)
    authorization_codes: dict[bytes, AuthorizationCode] = field(default_factory=dict)
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
