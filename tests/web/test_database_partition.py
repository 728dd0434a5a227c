"""PostgreSQL partitioned or slowed while serving: answers in time, 503 not 500, then recovery.

A fault proxy (tests/faults.py) sits between the server and PostgreSQL. With
``DATABASE_TIMEOUT=1`` and ``READINESS_TIMEOUT=1`` a partition (connections open, nothing
delivered) must cost a request about a second, never the partition's length; and a connection
whose statement timed out must never serve again (it may still have that statement in flight).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from tests.faults import FaultProxy
from tests.support import POSTGRES_URL, ServerThread, add_machine_client, postgres_schema
from tokensmith.core.sealing import generate_master_key
from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings, load_settings

pytestmark = pytest.mark.usefixtures("postgres")

TIMEOUT = 1.0  # DATABASE_TIMEOUT and READINESS_TIMEOUT of the server under test
# What a refused request may take beyond the one timeout that refused it (threads on 2 cores).
MARGIN = 1.0
FAST = 0.5  # what needs no database answers within this, whatever the database does
POOL = 4  # connections per pool: the concurrent requests below fill it, no more


@dataclass(frozen=True, slots=True)
class Node:
    proxy: FaultProxy
    server: ServerThread
    client: tuple[str, str]

    def token(self) -> tuple[httpx.Response, float]:
        """A client_credentials request: its answer and how long it took."""
        started = time.monotonic()
        response = httpx.post(
            self.server.base_url + "/token",
            data={"grant_type": "client_credentials"},
            auth=self.client,
            timeout=15,
        )
        return response, time.monotonic() - started

    def get(self, path: str) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = httpx.get(self.server.base_url + path, timeout=15)
        return response, time.monotonic() - started


def register_machine(settings: Settings) -> tuple[str, str]:
    """A client_credentials client with opaque access tokens: each token is a row to write."""

    async def add() -> tuple[str, str]:
        services = await open_services(settings)
        try:
            return await add_machine_client(
                services, "partition", scope="", access_token_format="opaque"
            )
        finally:
            await services.close()

    return asyncio.run(add())


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with FaultProxy(5432) as proxy, postgres_schema() as schema:
        settings = load_settings(
            var_dir=tmp_path_factory.mktemp("partition") / "var",
            database_url=POSTGRES_URL.replace("127.0.0.1:5432", proxy.url_port),
            database_schema=schema,
            database_pool_size=POOL,
            database_timeout=TIMEOUT,
            readiness_timeout=TIMEOUT,
            master_key=generate_master_key(),
        )
        with ServerThread(settings) as server:  # migrates the schema as it starts
            yield Node(proxy, server, register_machine(settings))


@pytest.fixture
def healthy(node: Node) -> Iterator[Node]:
    """The node, serving tokens; healed again afterwards whatever the test did."""
    node.proxy.heal()
    assert recovered(node), "the node does not serve tokens before the fault"
    # The client record read above stays cached: during the fault, only the token's own
    # record needs the database.
    try:
        yield node
    finally:
        node.proxy.heal()


def recovered(node: Node, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if node.token()[0].status_code == 200:
            return True
        time.sleep(0.1)
    return False


def concurrently(call: Callable[[], tuple[httpx.Response, float]], count: int) -> list[Outcome]:
    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(call) for _ in range(count)]
        return [Outcome(*future.result()) for future in futures]


@dataclass(frozen=True, slots=True)
class Outcome:
    response: httpx.Response
    seconds: float


def assert_refused_cleanly(outcome: Outcome, within: float) -> None:
    response = outcome.response
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["retry-after"] == "5"
    assert "access_token" not in response.text
    assert outcome.seconds < within, f"refused after {outcome.seconds:.2f} s"


def assert_fast(node: Node, *paths: str) -> None:
    for path in paths:
        response, seconds = node.get(path)
        assert response.status_code == 200, path
        assert seconds < FAST, f"{path} took {seconds:.2f} s"


def test_a_partition_costs_a_request_one_timeout_and_the_node_recovers(healthy: Node) -> None:
    node = healthy
    node.proxy.partition()
    with ThreadPoolExecutor(POOL) as pool:
        requests = [pool.submit(node.token) for _ in range(POOL)]
        time.sleep(0.2)  # the requests are stuck in the partition now
        assert_fast(node, "/healthz", "/jwks")  # the event loop is free
        outcomes = [Outcome(*request.result()) for request in requests]
    for outcome in outcomes:
        assert_refused_cleanly(outcome, TIMEOUT + MARGIN)
    # Still partitioned: the next ones are refused as quickly (no connection left stuck).
    for outcome in concurrently(node.token, 2):
        assert_refused_cleanly(outcome, TIMEOUT + MARGIN)
    assert_fast(node, "/healthz")

    node.proxy.heal()
    assert recovered(node), "no token within 5 s of the partition's end"


def test_readiness_answers_within_its_timeout_during_a_partition(healthy: Node) -> None:
    node = healthy
    assert node.get("/readyz")[0].status_code == 200
    node.proxy.partition()
    for _ in range(3):  # the first finds a pooled connection, the next ones new ones
        response, seconds = node.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["database"] == "unreachable"
        assert response.headers["retry-after"] == "5"
        assert seconds < TIMEOUT + 0.5, f"/readyz took {seconds:.2f} s"
    node.proxy.heal()
    deadline = time.monotonic() + 5
    while node.get("/readyz")[0].status_code != 200:
        assert time.monotonic() < deadline, "/readyz not ready within 5 s of the heal"
        time.sleep(0.1)


def test_added_latency_slows_requests_but_breaks_none(healthy: Node) -> None:
    node = healthy
    node.proxy.latency(0.1)  # 200 ms a round trip, well within the timeout
    for outcome in concurrently(node.token, POOL) + concurrently(node.token, POOL):
        assert outcome.response.status_code == 200, outcome.response.text
    assert_fast(node, "/healthz")

    # A round trip longer than the timeout: every request fails in time, cleanly, while each
    # statement that timed out is still on its way to the database (and may yet run there).
    node.proxy.latency(0.6)
    with ThreadPoolExecutor(POOL) as pool:
        requests = [pool.submit(node.token) for _ in range(POOL)]
        time.sleep(0.2)
        assert_fast(node, "/healthz", "/jwks")
        outcomes = [Outcome(*request.result()) for request in requests]
    for outcome in outcomes:
        assert_refused_cleanly(outcome, TIMEOUT + MARGIN)
    node.proxy.heal()
    assert recovered(node)


def test_no_connection_that_timed_out_serves_again(healthy: Node) -> None:
    node = healthy
    # Every connection of the pool gets a statement stuck in the partition and timed out.
    node.proxy.partition()
    for outcome in concurrently(node.token, POOL):
        assert outcome.response.status_code == 503
    node.proxy.heal()
    # What the partition held back arrives now, on whatever connections are still open: a
    # request on such a connection would read the old statement's answer, or wait on it.
    time.sleep(0.2)
    outcomes = [Outcome(*node.token()) for _ in range(POOL * 3)]
    outcomes += concurrently(node.token, POOL)
    for outcome in outcomes:
        assert outcome.response.status_code == 200, outcome.response.text
        assert outcome.seconds < TIMEOUT, f"a request took {outcome.seconds:.2f} s after the heal"
