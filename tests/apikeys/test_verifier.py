"""apikeys/verifier.py on its own, over a store in memory: the MAC keyed once hashes as
core.secrets.keyed_hash does, and a cached key keeps the identity its record gives."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokensmith.apikeys.format import generate_api_key
from tokensmith.apikeys.records import ApiKeyRecord
from tokensmith.apikeys.verifier import ApiKeyRefused, ApiKeyVerifier
from tokensmith.core.checksum import crc32_base62, random_base62
from tokensmith.core.clock import FrozenClock
from tokensmith.core.secrets import keyed_hash

PEPPER = b"p" * 32


class Store:
    def __init__(self, *records: ApiKeyRecord) -> None:
        self.records = {record.key_id: record for record in records}
        self.reads = 0

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        self.reads += 1
        return self.records.get(key_id)


def issued(scope: str = "a b", **fields: object) -> tuple[str, ApiKeyRecord]:
    key = generate_api_key("live")
    record = ApiKeyRecord(
        key.key_id,
        "n",
        "o",
        keyed_hash(PEPPER, key.text),
        scope,
        1,
        **fields,  # type: ignore[arg-type]
    )
    return key.text, record


def verifier(store: Store, ticks: FrozenClock) -> ApiKeyVerifier:
    return ApiKeyVerifier(store, PEPPER, FrozenClock(), monotonic=ticks.monotonic)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_the_kept_mac_hashes_as_keyed_hash(text: str) -> None:
    checker = ApiKeyVerifier(Store(), PEPPER, FrozenClock())  # type: ignore[arg-type]
    assert checker._hash(text) == keyed_hash(PEPPER, text)
    assert checker._hash(text) == keyed_hash(PEPPER, text)  # the kept MAC is not consumed


def test_a_cached_key_answers_with_its_own_identity() -> None:
    (one, first), (two, second) = issued("a b"), issued("c", audiences=("https://api",))
    store, ticks = Store(first, second), FrozenClock()
    checker = verifier(store, ticks)
    for _ in range(3):
        a = asyncio.run(checker.verify(one))
        b = asyncio.run(checker.verify(two))
        assert (a.key_id, a.scopes, a.audiences) == (first.key_id, {"a", "b"}, ())
        assert (b.key_id, b.scopes, b.audiences) == (second.key_id, {"c"}, ("https://api",))
    assert store.reads == 2  # one lookup each, then the cache


@pytest.mark.parametrize("change", ["revoked", "expired", "forbidden_source"])
def test_a_changed_record_is_judged_again_after_the_bound(change: str) -> None:
    """The identity is kept, the per-use checks are not: a record re-read after max_staleness
    is judged on what it now says (SECURITY.md case 49)."""
    text, record = issued()
    store, ticks = Store(record), FrozenClock()
    checker = verifier(store, ticks)
    assert asyncio.run(checker.verify(text, "10.0.0.1")).key_id == record.key_id
    fields = {
        "revoked": {"revoked_at": 5},
        "expired": {"expires_at": 0},
        "forbidden_source": {"allowed_cidrs": ("192.0.2.0/24",)},
    }[change]
    store.records[record.key_id] = ApiKeyRecord(
        record.key_id,
        "n",
        "o",
        record.secret_hash,
        "a b",
        1,
        **fields,  # type: ignore[arg-type]
    )
    ticks.advance(1.0)
    with pytest.raises(ApiKeyRefused) as refused:
        asyncio.run(checker.verify(text, "10.0.0.1"))
    assert refused.value.reason == change


def test_a_wrong_secret_never_matches_a_cached_key() -> None:
    text, record = issued()
    store, ticks = Store(record), FrozenClock()
    checker = verifier(store, ticks)
    asyncio.run(checker.verify(text))
    body = f"tsk_live_{record.key_id}_{random_base62(43)}"  # the same id, another secret
    with pytest.raises(ApiKeyRefused) as refused:
        asyncio.run(checker.verify(body + crc32_base62(body)))
    assert refused.value.reason == "invalid"
    assert store.reads == 2  # the lookup was paid, like an unknown id
