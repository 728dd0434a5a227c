"""Two servers on one database and one Redis: a lock set through one outlives a Redis outage on
both, and an operator's unlock made before the outage stays made."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import redis
import redis.asyncio as aioredis

from tests.faults import FaultProxy
from tests.support import REDIS_URL, SLOW_MACHINE, ServerThread, add_machine_client
from tokensmith.adapters.redis_limits import Limits
from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings

FORM = {"grant_type": "client_credentials"}


def register(settings: Settings, count: int) -> list[tuple[str, str]]:
    """``count`` client_credentials clients, stored straight into the database."""

    async def add() -> list[tuple[str, str]]:
        services = await open_services(settings)
        try:
            return [await add_machine_client(services, f"c{i}", scope="") for i in range(count)]
        finally:
            await services.close()

    return asyncio.run(add())


def subscribed(prefix: str) -> int:
    """How many nodes listen for lock events under ``prefix``."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return int(dict(client.pubsub_numsub(f"{prefix}lockouts"))[f"{prefix}lockouts".encode()])
    finally:
        client.close()


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def unlock(prefix: str, client_id: str) -> None:
    """What ``tokensmith lockouts clear --client`` does, from a third process's Limits; back
    once the event that tells the nodes has been delivered (a listener of its own hears it)."""

    async def run() -> None:
        operator = Limits(REDIS_URL, prefix=prefix, timeout=SLOW_MACHINE)
        listener = aioredis.Redis.from_url(REDIS_URL)
        try:
            async with listener.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(f"{prefix}lockouts")
                assert await operator.unlock({"client": client_id}) == {"client": client_id}
                # "clear client:<id>", then "below client:<id>@": its lock at every address.
                heard: list[bytes] = []
                while not heard or not heard[-1].startswith(b"below "):
                    message = await pubsub.get_message(timeout=SLOW_MACHINE)
                    if message is not None:
                        heard.append(message["data"])
                    assert len(heard) <= 2, heard
        finally:
            await listener.aclose()
            await operator.close()

    asyncio.run(run())


def test_a_lock_outlives_a_redis_outage_on_every_node(
    settings: Settings, redis_prefix: str
) -> None:
    proxy = FaultProxy(6379)
    shared = settings.model_copy(
        update={
            "redis_url": f"redis://127.0.0.1:{proxy.port}/0",
            "redis_key_prefix": redis_prefix,
            "redis_timeout": 2.0,
            "lockout_client_failures": 3,
            "lockout_address_failures": 1000,
            "lockout_first": 3,
            "lockout_longest": 60,
        }
    )
    try:
        with ServerThread(shared) as a, ServerThread(shared) as b:
            (locked, secret), (cleared, cleared_secret) = register(shared, 2)
            wait_for(lambda: subscribed(redis_prefix) == 2, "both nodes listen")
            at_a, at_b = a.base_url + "/token", b.base_url + "/token"
            for client_id in (locked, cleared):  # locked through a; b never sees either
                for _ in range(3):
                    assert httpx.post(at_a, data=FORM, auth=(client_id, "x")).status_code == 401
                assert httpx.post(at_a, data=FORM, auth=(client_id, "x")).status_code == 429
            unlock(redis_prefix, cleared)  # before the outage: every node must forget it
            time.sleep(0.1)  # delivered to b too: the moment b's idle loop takes to apply it
            started = time.monotonic()
            proxy.cut()

            for node in (at_b, at_a):
                answer = httpx.post(node, data=FORM, auth=(locked, secret))
                assert answer.status_code == 429, answer.text  # the right secret: still locked
                assert int(answer.headers["retry-after"]) >= 2  # the lock's own, not a 1 s stopgap
            assert httpx.post(at_b, data=FORM, auth=(cleared, cleared_secret)).status_code == 200

            time.sleep(max(0.0, 3.2 - (time.monotonic() - started)))  # the 3 s lock ends
            assert httpx.post(at_b, data=FORM, auth=(locked, "x")).status_code == 401
            # The fourth failure in all, not b's first: locked again at once, for twice as long.
            again = httpx.post(at_b, data=FORM, auth=(locked, secret))
            assert again.status_code == 429 and int(again.headers["retry-after"]) >= 5
    finally:
        proxy.close()
