"""Redis failing under a serving node, through real HTTP: a reset, a cut (refused), a partition
(silence) and Redis coming back never fail a request (issue #21). Two servers share Redis through
one FaultProxy: A has a steady stream of /token requests through the fault, B is idle during it
and busy right after. Both run under uvloop (as ``tokensmith serve`` does) and under asyncio's
own loop, whose redis-py errors differ (docs/operations.md, "When a dependency fails")."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import httpx
import pytest
import uvloop

from tests.faults import FaultProxy
from tests.support import METRICS_AUTH, ServerThread, add_machine_client, reserved_port
from tokensmith.adapters.redis_limits import Limits
from tokensmith.jose.dpop import generate_proof_key, make_proof
from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings

TIMEOUT = 0.25  # TOKENSMITH_REDIS_TIMEOUT here
LATENCY_BOUND = 1.5  # no request waits on Redis much longer than a few timeouts
PAUSE = 5.0  # Limits' wait before trying Redis again after an outage
FORM = {"grant_type": "client_credentials"}
Credentials = tuple[str, str]


@dataclass
class Answer:
    status: int
    seconds: float


def limits_of(server: ServerThread) -> Limits:
    """The running node's own limits: whether *it* shares them now (the gauge is per process)."""
    envelope: Any = server.server.config.app  # web/envelope.py's Envelope around the app
    return cast(Limits, envelope.app.state.services.limits)


def loop_of(server: ServerThread) -> asyncio.AbstractEventLoop:
    return server.server.servers[0].get_loop()


def register(settings: Settings, rate_limits: list[int | None]) -> list[Credentials]:
    """client_credentials clients, straight into the database; each with its rate limit."""

    async def add() -> list[Credentials]:
        services = await open_services(settings)
        try:
            made = []
            for limit in rate_limits:
                if limit is None:
                    made.append(await add_machine_client(services, "stream", scope=""))
                    continue
                made.append(
                    await add_machine_client(services, "limited", scope="", rate_limit=limit)
                )
            return made
        finally:
            await services.close()

    return asyncio.run(add())


def token(http: httpx.Client, client: Credentials) -> Answer:
    started = time.monotonic()
    status = http.post("/token", data=FORM, auth=client).status_code
    return Answer(status, time.monotonic() - started)


def burst(server: ServerThread, client: Credentials, n: int) -> list[Answer]:
    """``n`` requests at once, each on a connection of its own: several Redis connections."""

    def one(_: int) -> Answer:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            return token(http, client)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


@contextmanager
def stream(server: ServerThread, client: Credentials, workers: int = 4) -> Iterator[list[Answer]]:
    """Requests from ``workers`` keep-alive clients, back to back, until the block ends."""
    answers: list[Answer] = []
    stop = threading.Event()

    def run() -> None:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            while not stop.is_set():
                answers.append(token(http, client))

    threads = [threading.Thread(target=run, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    try:
        yield answers
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)


def shared_gauge(server: ServerThread) -> str:
    text = httpx.get(server.base_url + "/metrics", headers=METRICS_AUTH).text
    return next(line for line in text.splitlines() if line.startswith("tokensmith_rate_limits_"))


def wait_until_shared(server: ServerThread, client: Credentials, bound: float) -> None:
    """Traffic until the node shares its limits again (it tries Redis after PAUSE)."""
    deadline = time.monotonic() + bound
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        while not limits_of(server).shared:
            assert time.monotonic() < deadline, "sharing never resumed"
            assert token(http, client).status != 500
            time.sleep(0.1)


def statuses(http_a: httpx.Client, http_b: httpx.Client, client: Credentials) -> list[int]:
    """Two requests on each node, then one more on each: with a limit of 4 shared, the last two
    are refused; held per node, they would pass."""
    order = [http_a, http_b, http_a, http_b, http_a, http_b]
    return [token(http, client).status for http in order]


@pytest.mark.parametrize("loop", ["auto", "asyncio"])
@pytest.mark.parametrize("fault", ["reset", "cut", "partition"])
def test_a_redis_fault_never_fails_a_request(
    settings: Settings, redis_prefix: str, fault: str, loop: str
) -> None:
    with FaultProxy(6379) as proxy:
        configured = settings.model_copy(
            update={
                "redis_url": f"redis://{proxy.url_port}/0",
                "redis_key_prefix": redis_prefix,
                "redis_timeout": TIMEOUT,
                "rate_limit_per_address": 1_000_000,  # every request takes from a bucket
            }
        )
        with (
            ServerThread(configured, loop=loop) as a,
            ServerThread(configured, loop=loop) as b,
            httpx.Client(base_url=a.base_url, timeout=10) as http_a,
            httpx.Client(base_url=b.base_url, timeout=10) as http_b,
        ):
            assert isinstance(loop_of(a), uvloop.Loop) is (loop == "auto")
            worker, during, after = register(configured, [None, 3, 4])
            # Both nodes busy once: each has several pooled connections to Redis.
            assert {answer.status for answer in burst(a, worker, 6) + burst(b, worker, 6)} == {200}
            assert limits_of(a).shared and limits_of(b).shared
            assert shared_gauge(a).endswith(" 1.0")

            with stream(a, worker) as answers:
                time.sleep(0.3)
                getattr(proxy, fault)()
                time.sleep(1.2)
                # Limits still hold, shared or per node: three in a minute, then 429.
                assert [token(http_a, during).status for _ in range(4)] == [200] * 3 + [429]
                if fault != "reset":  # a reset costs only the calls under way as it hits
                    assert not limits_of(a).shared
                    assert shared_gauge(a).endswith(" 0.0")
            assert not [answer for answer in answers if answer.status != 200]
            assert max(answer.seconds for answer in answers) < LATENCY_BOUND
            assert len(answers) > 20

            proxy.heal()
            # B had no traffic during the fault: its pooled connections were reset under it.
            assert {answer.status for answer in burst(b, worker, 6)} == {200}
            assert limits_of(b).shared

            wait_until_shared(a, worker, bound=PAUSE + 3)
            assert shared_gauge(a).endswith(" 1.0")
            assert statuses(http_a, http_b, after) == [200, 200, 200, 200, 429, 429]


def test_dpop_proofs_are_refused_with_503_while_redis_is_away(
    settings: Settings, redis_prefix: str
) -> None:
    """Replay protection fails closed: no record, no proof (503 and Retry-After), never a 500;
    limits meanwhile go on per node. Once Redis is back, proofs pass again."""
    with FaultProxy(6379) as proxy, reserved_port() as port:
        configured = settings.model_copy(
            update={
                "issuer": f"http://127.0.0.1:{port}",  # a proof's htu is checked against it
                "redis_url": f"redis://{proxy.url_port}/0",
                "redis_key_prefix": redis_prefix,
                "redis_timeout": TIMEOUT,
            }
        )
        with (
            ServerThread(configured, port=port) as server,
            httpx.Client(base_url=server.base_url, timeout=10) as http,
        ):
            (machine,) = register(configured, [None])
            key = generate_proof_key()

            def with_proof() -> httpx.Response:
                url = server.base_url + "/token"
                proof = make_proof(key, method="POST", url=url, now=int(time.time()))
                return http.post("/token", data=FORM, auth=machine, headers={"DPoP": proof})

            first = with_proof()
            assert first.status_code == 200, first.text
            for fault in ("cut", "partition", "reset"):
                getattr(proxy, fault)()
                time.sleep(0.05)
                started = time.monotonic()
                answer = with_proof()
                assert time.monotonic() - started < LATENCY_BOUND
                if fault == "reset":  # reconnected before use: nothing lost
                    assert answer.status_code == 200, answer.text
                else:
                    assert answer.status_code == 503, answer.text
                    assert answer.json()["error"] == "temporarily_unavailable"
                    assert answer.headers["retry-after"] == "5"
                    # Without a proof, the client still gets its (bearer) token.
                    assert http.post("/token", data=FORM, auth=machine).status_code == 200
                proxy.heal()
                assert with_proof().status_code == 200
