"""SqlClientStore's cache of lookups (persistence/repositories/clients.py), on both databases.

Only the SQL store caches: the in-memory one has nothing to cache, so this is no contract test.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.persistence.conftest import NOW, Stores
from tests.support import OFFERED
from tokensmith.core.clock import FrozenClock
from tokensmith.core.secrets import keyed_hash
from tokensmith.oauth.clients import NewClient, generate_client_id
from tokensmith.persistence.repositories.clients import CLIENT_CACHE_SECONDS, SqlClientStore

pytestmark = pytest.mark.anyio


async def test_client_lookups_are_cached_for_a_second(stores: Stores) -> None:
    """Another process's change shows within CLIENT_CACHE_SECONDS; this store's own at once."""
    assert stores.engine is not None
    ticks = FrozenClock(start=100)
    store = SqlClientStore(stores.engine, monotonic=ticks.monotonic)
    other = SqlClientStore(stores.engine)  # stands in for the CLI or another node
    pepper = stores.pepper
    client = NewClient("cached", grant_types=("client_credentials",)).validated(
        generate_client_id(), keyed_hash(pepper, "one"), NOW, offered=OFFERED
    )
    await store.add(client)
    assert await store.get(client.client_id) == client
    await other.replace_secret(client.client_id, keyed_hash(pepper, "two"), None, NOW)
    assert await store.get(client.client_id) == client  # still the copy read a moment ago
    ticks.advance(CLIENT_CACHE_SECONDS)
    fresh = await store.get(client.client_id)
    assert fresh is not None
    assert fresh.secret_hash == keyed_hash(pepper, "two")

    await store.replace_secret(client.client_id, keyed_hash(pepper, "three"), None, NOW)
    rotated = await store.get(client.client_id)  # its own change: no wait
    assert rotated is not None
    assert rotated.secret_hash == keyed_hash(pepper, "three")
    assert await store.delete(client.client_id)
    assert await store.get(client.client_id) is None

    assert await store.get("unknown") is None
    await other.add(replace(client, client_id="unknown"))
    assert await store.get("unknown") is None  # a miss is kept as long as a hit (SECURITY 31)
    ticks.advance(CLIENT_CACHE_SECONDS)
    assert await store.get("unknown") is not None
