"""The BFF's Redis store going away (issue #21): every store call gives up within its timeout
with StoreUnavailable, and a request that needs the store answers 503 temporarily_unavailable
with Retry-After, never a 500; a reset alone costs nothing. Under uvloop and asyncio's loop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.bff.conftest import bff_document
from tests.faults import FaultProxy, LoopRunner
from tokensmith.bff import build_bff, parse_config
from tokensmith.bff.cookies import SESSION_COOKIE
from tokensmith.bff.sealing import new_session_id
from tokensmith.bff.stores import REDIS_TIMEOUT, StoreUnavailable, open_store

BOUND = 3 * REDIS_TIMEOUT  # a connect and a read at most, each within the timeout


@pytest.mark.parametrize("fault", ["cut", "partition", "reset"])
def test_the_store_gives_up_within_its_timeout(
    on_each_loop: LoopRunner, fault: str, redis_prefix: str
) -> None:
    async def scenario() -> None:
        with FaultProxy(6379) as proxy:
            store = open_store(f"redis://{proxy.url_port}/0", redis_prefix)
            expires = int(time.time()) + 60
            try:
                await store.put(b"k", b"sealed", expires)
                getattr(proxy, fault)()
                await asyncio.sleep(0.05)
                started = time.monotonic()
                if fault == "reset":  # reconnected before use: nothing lost
                    assert await store.get(b"k") == b"sealed"
                else:
                    with pytest.raises(StoreUnavailable):
                        await store.get(b"k")
                assert time.monotonic() - started < BOUND
                proxy.heal()
                assert await store.take(b"k") == b"sealed"
            finally:
                await store.aclose()

    on_each_loop(scenario())


def test_a_request_whose_session_store_is_away_answers_503(
    on_each_loop: LoopRunner, tmp_path: Path, redis_prefix: str
) -> None:
    (tmp_path / "client-secret").write_text("secret")

    async def scenario() -> None:
        with FaultProxy(6379) as proxy:
            document = bff_document(
                "http://localhost:8700",
                "http://127.0.0.1:9",  # never asked: the store refuses first
                "spa",
                "http://127.0.0.1:9",
                tmp_path,
                store=f"redis://{proxy.url_port}/0",
                redis_key_prefix=redis_prefix,
            )
            bff = build_bff(parse_config(document, tmp_path))
            transport = httpx.ASGITransport(app=bff)
            cookie = {"cookie": f"{SESSION_COOKIE}={new_session_id()}"}
            try:
                async with httpx.AsyncClient(transport=transport, base_url="http://bff") as http:
                    assert (await http.get("/bff/session", headers=cookie)).status_code == 401
                    proxy.cut()
                    answer = await http.get("/bff/session", headers=cookie)
                    assert answer.status_code == 503, answer.text
                    assert answer.json()["error"] == "temporarily_unavailable"
                    assert answer.headers["retry-after"] == "5"
                    proxy.heal()
                    assert (await http.get("/bff/session", headers=cookie)).status_code == 401
            finally:
                await bff.sessions.store.aclose()

    on_each_loop(scenario())
