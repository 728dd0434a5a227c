"""The per-client refresh grace window: a lost response may be retried, never forked."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.oauth.conftest import Registered, Registrar
from tests.oauth.test_authorization import CALLBACK, refresh, tokens_for
from tests.support import ServerThread
from tokensmith.oauth.clients import NewClient
from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings

pytestmark = [pytest.mark.usefixtures("alice"), pytest.mark.backends("sqlite", "postgresql")]


def client_with_grace(register: Registrar, seconds: int) -> Registered:
    return register(
        NewClient(
            "mobile",
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=(CALLBACK,),
            scope="openid api:read",
            refresh_grace=seconds,
        )
    )


def test_retry_inside_the_window_gets_the_same_successor(
    server: ServerThread, http: httpx.Client, register: Registrar
) -> None:
    client = client_with_grace(register, 30)
    first = tokens_for(server, http, client)["refresh_token"]
    lost = refresh(http, client, first)  # imagine this response never arrived
    assert lost.status_code == 200
    retry = refresh(http, client, first)
    assert retry.status_code == 200
    assert retry.json()["refresh_token"] == lost.json()["refresh_token"]  # one chain, not two
    assert retry.json()["access_token"] != lost.json()["access_token"]
    moved_on = refresh(http, client, retry.json()["refresh_token"])
    assert moved_on.status_code == 200
    # The successor has been used: the window is closed, and the old token is now plain reuse.
    replay = refresh(http, client, first)
    assert replay.json()["error"] == "invalid_grant"
    assert (
        refresh(http, client, moved_on.json()["refresh_token"]).json()["error"] == "invalid_grant"
    )


def test_parallel_retries_inside_the_window_share_one_successor(
    server: ServerThread, http: httpx.Client, register: Registrar
) -> None:
    client = client_with_grace(register, 30)
    first = tokens_for(server, http, client)["refresh_token"]

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as h:
            form = {"grant_type": "refresh_token", "refresh_token": first}
            calls = [
                h.post("/token", data=form, auth=(client.client_id, client.secret or ""))
                for _ in range(10)
            ]
            return list(await asyncio.gather(*calls))

    responses = asyncio.run(race())
    assert all(r.status_code == 200 for r in responses)
    assert len({r.json()["refresh_token"] for r in responses}) == 1


def test_after_the_window_reuse_revokes(
    server: ServerThread, http: httpx.Client, register: Registrar
) -> None:
    client = client_with_grace(register, 1)
    first = tokens_for(server, http, client)["refresh_token"]
    second = refresh(http, client, first).json()["refresh_token"]
    time.sleep(2.1)
    assert refresh(http, client, first).json()["error"] == "invalid_grant"
    assert refresh(http, client, second).json()["error"] == "invalid_grant"


def test_strict_by_default(server: ServerThread, http: httpx.Client, web_app: Registered) -> None:
    first = tokens_for(server, http, web_app)["refresh_token"]
    assert refresh(http, web_app, first).status_code == 200
    assert refresh(http, web_app, first).json()["error"] == "invalid_grant"


def test_sealed_successors_are_erased_after_the_window(
    server: ServerThread, http: httpx.Client, register: Registrar, settings: Settings
) -> None:
    client = client_with_grace(register, 30)
    first = tokens_for(server, http, client)["refresh_token"]
    successor = refresh(http, client, first).json()["refresh_token"]

    async def inspect() -> tuple[int, int]:
        services = await open_services(settings)
        try:
            kept = await services.refresh.forget_successors(services.clock.now() - 120)
            erased = await services.refresh.forget_successors(services.clock.now() + 1)
            return kept, erased
        finally:
            await services.close()

    assert asyncio.run(inspect()) == (0, 1)
    assert refresh(http, client, successor).status_code == 200  # the successor itself still works
