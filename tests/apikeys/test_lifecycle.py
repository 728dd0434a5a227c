"""API keys through the manager and the verifier, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support import Database
from tokensmith.apikeys.format import parse_api_key
from tokensmith.apikeys.lifecycle import LeakReport, NewApiKey, status_of
from tokensmith.apikeys.verifier import ApiKeyRefused, ApiKeyVerifier
from tokensmith.audit.events import AuditQuery
from tokensmith.core.clock import FrozenClock
from tokensmith.errors import InvalidRequest, NotFound
from tokensmith.persistence.connections import connections_for
from tokensmith.runtime.services import Services

pytestmark = [pytest.mark.anyio, pytest.mark.backends("sqlite", "postgresql")]

ORDERS = NewApiKey(name="orders sync", owner="team-orders", scope="orders:read orders:write")


@pytest.fixture
def statements(services: Services) -> Iterator[list[str]]:
    """Every SQL statement the services' engine sends while the test runs."""
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    engine = connections_for(services.engine).sync_engine
    sa.event.listen(engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", record)


async def refusal(verifier: ApiKeyVerifier, key: str, ip: str | None = None) -> str:
    with pytest.raises(ApiKeyRefused) as caught:
        await verifier.verify(key, ip)
    return caught.value.reason


async def test_a_created_key_verifies_with_its_identity(services: Services) -> None:
    issued = await services.key_manager.create(ORDERS, "tester")
    identity = await services.key_verifier.verify(issued.key)
    assert identity.key_id == issued.record.key_id
    assert identity.scopes == {"orders:read", "orders:write"}
    assert (identity.owner, identity.name) == ("team-orders", "orders sync")
    assert issued.key.startswith("tsk_test_")  # development mode


async def test_only_a_keyed_hash_is_stored(services: Services) -> None:
    issued = await services.key_manager.create(ORDERS, "tester")
    stored = await services.api_keys.get(issued.record.key_id)
    assert stored is not None and len(stored.secret_hash) == 32
    assert issued.key.encode() not in stored.secret_hash
    assert "key" not in repr(issued).replace("key_id", "").replace("IssuedApiKey", "")


async def test_a_bad_checksum_is_refused_without_a_query(
    services: Services, statements: list[str]
) -> None:
    issued = await services.key_manager.create(ORDERS, "tester")
    typo = issued.key[:-1] + ("A" if issued.key[-1] != "A" else "B")
    statements.clear()
    for bad in (typo, "tsk_live_nonsense", "", "x" * 5000, issued.key + " "):
        assert await refusal(services.key_verifier, bad) == "malformed"
    assert statements == []


async def test_unknown_id_and_wrong_secret_do_the_same_work(
    services: Services, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SECURITY 47: one indexed lookup and one 32-byte comparison either way, same answer."""
    from tokensmith.apikeys import verifier as module
    from tokensmith.apikeys.format import generate_api_key

    issued = await services.key_manager.create(ORDERS, "tester")
    # A wrong secret behind a real id, with a valid checksum (an attacker can compute one).
    forged_body = issued.key[: len("tsk_test_") + 13] + "Q" * 43
    forged = parse_api_key(_with_checksum(forged_body))
    unknown = generate_api_key("test")
    assert forged is not None
    comparisons: list[tuple[int, int]] = []
    real_compare = module.constant_time_equals

    def spy(a: bytes | str, b: bytes | str) -> bool:
        comparisons.append((len(a), len(b)))
        return real_compare(a, b)

    monkeypatch.setattr(module, "constant_time_equals", spy)
    outcomes = []
    for candidate in (forged.text, unknown.text):
        statements.clear()
        comparisons.clear()
        outcomes.append(await refusal(services.key_verifier, candidate))
        assert len(statements) == 1 and "api_keys" in statements[0]
        assert comparisons == [(32, 32)]
    assert outcomes == ["invalid", "invalid"]


def _with_checksum(body: str) -> str:
    from tokensmith.apikeys.format import _checksum

    return body + _checksum(body)


async def test_expiry_revocation_and_status(services: Services, clock: FrozenClock) -> None:
    manager = services.key_manager
    short = await manager.create(
        NewApiKey(name="temp", owner="o", scope="a", expires_in=3600), "tester"
    )
    assert status_of(short.record, clock.now()) == "active"
    clock.advance(3600)
    verifier = ApiKeyVerifier(services.api_keys, services.master.api_key_pepper, clock)
    assert await refusal(verifier, short.key) == "expired"
    assert status_of(short.record, clock.now()) == "expired"

    doomed = await manager.create(ORDERS, "tester")
    await services.key_verifier.verify(doomed.key)
    record = await manager.revoke(doomed.record.key_id, "tester")
    assert status_of(record, clock.now()) == "revoked"
    # Revoked on this node: its cache forgets the key at once.
    assert await refusal(services.key_verifier, doomed.key) == "revoked"


async def test_rotation_keeps_the_old_key_for_the_grace_period(
    services: Services, clock: FrozenClock
) -> None:
    manager = services.key_manager
    old = await manager.create(
        NewApiKey(
            name="ci",
            owner="o",
            scope="deploy",
            expires_in=30 * 86400,
            allowed_cidrs=("10.0.0.0/8",),
            rate_limit=100,
        ),
        "tester",
    )
    clock.advance(100)
    new = await manager.rotate(old.record.key_id, "tester", grace=3600)
    assert new.record.scope == "deploy" and new.record.allowed_cidrs == ("10.0.0.0/8",)
    assert new.record.rate_limit == 100
    assert new.record.expires_at == clock.now() + 30 * 86400  # the same lifetime
    verifier = ApiKeyVerifier(services.api_keys, services.master.api_key_pepper, clock)
    assert (await verifier.verify(old.key, "10.1.2.3")).key_id == old.record.key_id
    assert (await verifier.verify(new.key, "10.1.2.3")).key_id == new.record.key_id
    shown = await manager.get(old.record.key_id)
    assert status_of(shown, clock.now()) == "rotating" and shown.replaced_by == new.record.key_id
    with pytest.raises(InvalidRequest, match="rotate"):
        await manager.rotate(old.record.key_id, "tester", grace=0)
    clock.advance(3600)
    verifier = ApiKeyVerifier(services.api_keys, services.master.api_key_pepper, clock)
    assert await refusal(verifier, old.key, "10.1.2.3") == "expired"
    assert (await verifier.verify(new.key, "10.1.2.3")).key_id == new.record.key_id


async def test_rotation_with_no_grace_ends_the_old_key_now(
    services: Services, clock: FrozenClock
) -> None:
    old = await services.key_manager.create(ORDERS, "tester")
    await services.key_verifier.verify(old.key)
    await services.key_manager.rotate(old.record.key_id, "tester", grace=0)
    assert await refusal(services.key_verifier, old.key) == "expired"


async def test_source_address_ranges(services: Services) -> None:
    issued = await services.key_manager.create(
        NewApiKey(
            name="office", owner="o", scope="a", allowed_cidrs=("192.0.2.0/24", "2001:db8::/32")
        ),
        "tester",
    )
    verifier = services.key_verifier
    assert await verifier.verify(issued.key, "192.0.2.77")
    assert await verifier.verify(issued.key, "::ffff:192.0.2.8")
    assert await verifier.verify(issued.key, "2001:db8::1")
    for outside in ("192.0.3.1", "10.0.0.1", "2001:db9::1", None, "not-an-ip"):
        assert await refusal(verifier, issued.key, outside) == "forbidden_source"


async def test_the_per_key_rate_limit(services: Services) -> None:
    issued = await services.key_manager.create(
        NewApiKey(name="slow", owner="o", scope="a", rate_limit=3), "tester"
    )
    for _ in range(3):
        await services.key_verifier.verify(issued.key)
    with pytest.raises(ApiKeyRefused) as caught:
        await services.key_verifier.verify(issued.key)
    assert caught.value.reason == "rate_limited" and caught.value.retry_after == 20


async def test_the_cache_bounds_how_stale_a_revocation_can_be(
    services: Services, clock: FrozenClock
) -> None:
    """SECURITY 49: a key revoked on another node stops working here within the bound."""
    ticks = FrozenClock(start=1000)
    other_node = ApiKeyVerifier(
        services.api_keys,
        services.master.api_key_pepper,
        clock,
        max_staleness=1.0,
        monotonic=ticks.monotonic,
    )
    issued = await services.key_manager.create(ORDERS, "tester")
    await other_node.verify(issued.key)
    await services.key_manager.revoke(issued.record.key_id, "tester")
    ticks.advance(0.5)
    await other_node.verify(issued.key)  # still within the bound: served from the cache
    ticks.advance(0.5)
    assert await refusal(other_node, issued.key) == "revoked"


async def test_the_cache_saves_the_lookup_and_stays_bounded(
    services: Services, clock: FrozenClock, statements: list[str]
) -> None:
    ticks = FrozenClock(start=1000)
    verifier = ApiKeyVerifier(
        services.api_keys,
        services.master.api_key_pepper,
        clock,
        cache_size=2,
        monotonic=ticks.monotonic,
    )
    keys = [await services.key_manager.create(ORDERS, "tester") for _ in range(3)]
    statements.clear()
    await verifier.verify(keys[0].key)
    await verifier.verify(keys[0].key)
    assert len(statements) == 1
    for issued in keys:
        await verifier.verify(issued.key)
    assert len(verifier._cache) == 2


async def test_last_used_is_written_in_batches(
    services: Services, clock: FrozenClock, statements: list[str]
) -> None:
    issued = await services.key_manager.create(ORDERS, "tester")
    statements.clear()
    for _ in range(20):
        await services.key_verifier.verify(issued.key)
    assert not any(s.lstrip().upper().startswith("UPDATE") for s in statements)
    assert await services.key_verifier.flush_last_used() == 1
    stored = await services.api_keys.get(issued.record.key_id)
    assert stored is not None and stored.last_used_at == clock.now()


async def test_every_change_is_an_audit_event(services: Services) -> None:
    manager = services.key_manager
    issued = await manager.create(ORDERS, "alice")
    rotated = await manager.rotate(issued.record.key_id, "bob", grace=60)
    await manager.revoke(rotated.record.key_id, "carol")
    await manager.report_leaks([LeakReport(issued.key, url="https://x.test/a")], "scanner")
    events = await services.audit.query(AuditQuery(limit=10))
    names = [(e.event, e.actor) for e in reversed(events)]
    assert names == [
        ("api_key.created", "alice"),
        ("api_key.rotated", "bob"),
        ("api_key.revoked", "carol"),
        ("api_key.leaked", "reporter:scanner"),
    ]
    leaked = events[0]
    assert leaked.detail["url"] == "https://x.test/a" and leaked.detail["revoked"] is True
    assert leaked.subject == "team-orders"
    for event in events:
        assert issued.key not in str(event) and rotated.key not in str(event)


async def test_leak_reports_revoke_genuine_keys_only(services: Services) -> None:
    notices: list[tuple[str, dict[str, object]]] = []
    services.key_manager._notify = lambda event, payload: notices.append((event, payload))
    real = await services.key_manager.create(ORDERS, "tester")
    typo = real.key[:-1] + ("A" if real.key[-1] != "A" else "B")
    verdicts = await services.key_manager.report_leaks(
        [
            LeakReport(real.key, type="tokensmith_api_key", url="https://gist.test/1"),
            LeakReport(typo),
            LeakReport("tsk_live_" + "x" * 62),
            LeakReport("not a key at all"),
        ],
        "github",
    )
    assert [v.label for v in verdicts] == [
        "true_positive",
        "false_positive",
        "false_positive",
        "false_positive",
    ]
    assert all(real.key not in v.token_hash for v in verdicts)
    assert await refusal(services.key_verifier, real.key) == "revoked"
    assert notices == [
        (
            "api_key.leaked",
            {
                "key_id": real.record.key_id,
                "name": "orders sync",
                "owner": "team-orders",
                "revoked_at": services.clock.now(),
                "url": "https://gist.test/1",
                "source": "",
                "reporter": "github",
            },
        )
    ]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (NewApiKey(name="", owner="o", scope="a"), "name"),
        (NewApiKey(name="n", owner="", scope="a"), "owner"),
        (NewApiKey(name="n", owner="o", scope=""), "scope"),
        (NewApiKey(name="n", owner="o", scope='a "b"'), "scope"),
        (NewApiKey(name="n", owner="o", scope="a", expires_in=5), "expires_in"),
        (NewApiKey(name="n", owner="o", scope="a", rate_limit=0), "rate_limit"),
        (NewApiKey(name="n", owner="o", scope="a", allowed_cidrs=("10.0.0.300/8",)), "10.0"),
        (NewApiKey(name="n", owner="o", scope="a", allowed_cidrs=("10.0.0.0/8",) * 33), "at most"),
        (NewApiKey(name="n\x00", owner="o", scope="a"), "name"),
    ],
)
async def test_bad_requests_are_refused(
    services: Services, request_: NewApiKey, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        await services.key_manager.create(request_, "tester")


async def test_unknown_ids_are_not_found(services: Services) -> None:
    for key_id in ("AAAAAAAAAAAA", "../../etc", "x' OR '1'='1", ""):
        with pytest.raises(NotFound):
            await services.key_manager.get(key_id)
        with pytest.raises(NotFound):
            await services.key_manager.revoke(key_id, "tester")


async def test_a_database_dump_holds_no_usable_key(
    services: Services, database: Database, tmp_path: Path
) -> None:
    """SECURITY 46: grep a full dump for every key, its secret part, and its checksum-less body."""
    issued = [await services.key_manager.create(ORDERS, "tester") for _ in range(5)]
    rotated = await services.key_manager.rotate(issued[0].record.key_id, "tester", grace=60)
    await services.key_manager.report_leaks([LeakReport(issued[1].key)], "scanner")
    await services.trail.flush()
    if database.backend == "sqlite":
        await services.engine.dispose()
        path = Path(database.url.removeprefix("sqlite:///"))
        dump = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    else:
        command = [
            "pg_dump",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-n",
            database.schema or "",
            "test",
        ]
        done = await asyncio.to_thread(subprocess.run, command, check=True, capture_output=True)
        dump = done.stdout
    assert b"api_keys" in dump and issued[2].record.key_id.encode() in dump
    for key in [i.key for i in issued] + [rotated.key]:
        secret = key.split("_")[3]
        for needle in (key, secret, secret[:43]):
            assert needle.encode() not in dump
