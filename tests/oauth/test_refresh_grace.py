"""The refresh grace window: a duplicate or a lost response's retry gets the same successor,
never a fork; outside the window's bounds a duplicate is reuse, as before (docs/oauth.md)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.oauth.conftest import Registered, Registrar
from tests.oauth.test_authorization import CALLBACK, refresh, tokens_for
from tests.support import ServerThread
from tokensmith.oauth.clients import NewClient
from tokensmith.oauth.refresh_rotation import MAX_DUPLICATES
from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings

pytestmark = [pytest.mark.usefixtures("alice"), pytest.mark.backends("sqlite", "postgresql")]


def client_with_grace(register: Registrar, seconds: int | None) -> Registered:
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
    # The rotation and as many duplicates as are answered (MAX_DUPLICATES).
    responses = race(server, client, first, 1 + MAX_DUPLICATES)
    assert all(r.status_code == 200 for r in responses)
    assert len({r.json()["refresh_token"] for r in responses}) == 1
    assert len({r.json()["access_token"] for r in responses}) == 1 + MAX_DUPLICATES
    assert refresh(http, client, responses[0].json()["refresh_token"]).status_code == 200


def race(server: ServerThread, client: Registered, token: str, n: int) -> list[httpx.Response]:
    """``n`` presentations of ``token`` at once."""

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as h:
            form = {"grant_type": "refresh_token", "refresh_token": token}
            auth = (client.client_id, client.secret or "")
            return list(
                await asyncio.gather(*(h.post("/token", data=form, auth=auth) for _ in range(n)))
            )

    return asyncio.run(run())


def test_after_the_window_reuse_revokes(
    server: ServerThread, http: httpx.Client, register: Registrar
) -> None:
    client = client_with_grace(register, 1)
    first = tokens_for(server, http, client)["refresh_token"]
    second = refresh(http, client, first).json()["refresh_token"]
    time.sleep(2.1)
    assert refresh(http, client, first).json()["error"] == "invalid_grant"
    assert refresh(http, client, second).json()["error"] == "invalid_grant"


def test_on_by_default(server: ServerThread, http: httpx.Client, web_app: Registered) -> None:
    """A client without a window of its own has the server's (REFRESH_GRACE, 5 s)."""
    first = tokens_for(server, http, web_app)["refresh_token"]
    winner = refresh(http, web_app, first)
    duplicate = refresh(http, web_app, first)
    assert winner.status_code == duplicate.status_code == 200
    assert winner.json()["refresh_token"] == duplicate.json()["refresh_token"]


def test_a_window_of_zero_is_strict_and_says_why(
    server: ServerThread, http: httpx.Client, register: Registrar
) -> None:
    client = client_with_grace(register, 0)
    first = tokens_for(server, http, client)["refresh_token"]
    second = refresh(http, client, first).json()["refresh_token"]
    refused = refresh(http, client, first).json()
    assert refused["error"] == "invalid_grant"
    # A client can tell a race from a revocation.
    assert "rotated 0 s ago by another request" in refused["error_description"]
    assert "no refresh grace window" in refused["error_description"]
    assert refresh(http, client, second).json()["error"] == "invalid_grant"  # family revoked


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
