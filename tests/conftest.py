"""Fixtures shared by every test. Storage and HTTP tests run once per database backend."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.support import METRICS_TOKEN, Database, postgres_admin, postgres_schema
from tokensmith.core.clock import FrozenClock
from tokensmith.core.sealing import generate_master_key
from tokensmith.runtime.services import Services, open_services
from tokensmith.settings import Settings, load_settings

# Property tests run beside other workers' servers and subprocesses, so how long one example takes
# says nothing about the code under test: no per-example deadline and no too-slow health check.
# What each property asserts is untouched.
hypothesis_settings.register_profile(
    "tokensmith", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("tokensmith")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres() -> None:
    """PostgreSQL must be there: a missing database fails the run loudly, never skips."""
    try:
        postgres_admin("SELECT 1")
    except Exception as exc:
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432/test is required and unreachable: {exc}")


@pytest.fixture(scope="session")
def redis_up() -> None:
    """Redis must be there: a missing server fails the run loudly, never skips."""
    import redis

    from tests.support import REDIS_URL

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except Exception as exc:
        pytest.fail(f"Redis at {REDIS_URL} is required and unreachable: {exc}")


@pytest.fixture
def redis_prefix(redis_up: None) -> Iterator[str]:
    """A Redis key space of this test only (TOKENSMITH_REDIS_KEY_PREFIX), removed afterwards.

    Every test that touches Redis takes one: tests run at once in several xdist workers (and in
    other checkouts on the same machine) against the one Redis, and a lockout or rate limit
    counted under a shared prefix would leak from one test into another."""
    import redis

    from tests.support import REDIS_URL

    value = f"test:{secrets.token_hex(8)}:"
    yield value
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(value + "*"):
            client.delete(key)
    finally:
        client.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests above storage marked sqlite_only run once: storage has its own suites on both
    # databases, and a second run of a CLI or HTTP test on PostgreSQL would only cost time.
    def postgres_twin(item: pytest.Item) -> bool:
        callspec = getattr(item, "callspec", None)
        return (
            item.get_closest_marker("sqlite_only") is not None
            and callspec is not None
            and callspec.params.get("database") == "postgresql"
        )

    twins = [item for item in items if postgres_twin(item)]
    if twins:
        config.hook.pytest_deselected(items=twins)
        items[:] = [item for item in items if not postgres_twin(item)]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        yield Database("sqlite", f"sqlite:///{tmp_path / 'tokensmith.db'}", None)
        return
    request.getfixturevalue("postgres")
    from tests.support import POSTGRES_URL

    with postgres_schema() as schema:
        yield Database("postgresql", POSTGRES_URL, schema)


@pytest.fixture
def master_key() -> str:
    return generate_master_key()


@pytest.fixture
def settings(database: Database, tmp_path: Path, master_key: str) -> Settings:
    return load_settings(
        var_dir=tmp_path / "var",
        database_url=database.url,
        database_schema=database.schema,
        master_key=master_key,
        issuer="http://127.0.0.1:8000",
        metrics_token=METRICS_TOKEN,
    )


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def services(settings: Settings, clock: FrozenClock) -> AsyncIterator[Services]:
    running = await open_services(settings, clock=clock, apply_migrations=True)
    try:
        yield running
    finally:
        await running.close()
