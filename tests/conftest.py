"""Fixtures shared by every test, and the one rule for which storage backend a test runs on.

**Backends.** A test that stores anything takes the ``backend`` fixture, directly or through
``database``, ``settings``, ``services`` or the contract suite's ``stores``; it then runs once per
backend it is given, and its id says which (``test_x[sqlite]``). The backends are

- ``sqlite``: a file of its own under ``tmp_path``;
- ``postgresql``: a schema of its own in the ``test`` database, dropped afterwards;
- ``memory``: the in-memory stores of ``tokensmith.persistence.memory``, no database at all (only
  for tests that use no ``database``: the contract suite in ``tests/persistence``).

Which ones: ``@pytest.mark.backends(...)`` on the test or its module says; without it, the storage
suite (``tests/persistence``) runs on SQLite and PostgreSQL, and every test above storage on
SQLite only, since storage behaviour is covered on both databases below it. A test
above storage that is about storage end to end (the code flow, grant races, API keys, serving,
crashes) says
``@pytest.mark.backends("sqlite", "postgresql")``. ``pytest_generate_tests`` below is the whole
mechanism; docs/architecture.md (Tests) lists what runs where.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.faults import LOOPS, LoopRunner
from tests.support import (
    BACKENDS,
    DATABASES,
    METRICS_TOKEN,
    Database,
    postgres_admin,
    postgres_schema,
)
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


# The storage suite: without a backends marker, its tests run on both databases.
_STORAGE_SUITES = (Path(__file__).parent / "persistence",)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``backend``: by the test's ``backends`` marker, or its suite's default."""
    if "backend" not in metafunc.fixturenames:
        return
    test = metafunc.definition
    marker = test.get_closest_marker("backends")
    if marker is None:
        in_storage = any(Path(test.path).is_relative_to(suite) for suite in _STORAGE_SUITES)
        names: tuple[str, ...] = DATABASES if in_storage else ("sqlite",)
    else:
        names = tuple(marker.args)
    if not names or not set(names) <= set(BACKENDS) or len(set(names)) != len(names):
        raise pytest.UsageError(f"{test.nodeid}: backends() takes some of {BACKENDS}")
    if "memory" in names and "database" in metafunc.fixturenames:
        raise pytest.UsageError(f"{test.nodeid} needs a database: memory is not one")
    metafunc.parametrize("backend", names, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """``memory``, ``sqlite`` or ``postgresql``: see the module docstring."""
    return str(request.param)


@pytest.fixture
def database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    assert backend in DATABASES, backend
    if backend == "sqlite":
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


@pytest.fixture(params=sorted(LOOPS))
def on_each_loop(request: pytest.FixtureRequest) -> LoopRunner:
    """Runs a scenario to completion on a loop of its own: uvloop, then asyncio's."""
    return LOOPS[request.param]
