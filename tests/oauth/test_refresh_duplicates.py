"""Concurrent refreshes are not theft (issue 20).

Through running servers: two nodes on one database answer the same refresh token sent to both at
the same moment with one successor, round after round; the theft cases still end the family
(another client, another credential, too many duplicates, after the window, an older
generation); a duplicate that arrives while the winner still holds its transaction waits for it.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.oauth.conftest import Registered, Registrar
from tests.oauth.test_audit_events import events, named
from tests.oauth.test_authorization import CALLBACK, refresh, tokens_for
from tests.support import ServerThread
from tokensmith.core.secrets import keyed_hash
from tokensmith.oauth.clients import NewClient, generate_client_secret
from tokensmith.oauth.refresh_rotation import MAX_DUPLICATES
from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings

pytestmark = [pytest.mark.usefixtures("alice")]


def family_state(settings: Settings, token: str) -> tuple[bool, int]:
    """Whether the token's family is revoked, and how many of its tokens are unused."""

    async def read() -> tuple[bool, int]:
        services = await open_services(settings)
        try:
            found = await services.refresh.get(keyed_hash(services.master.pepper, token))
            assert found is not None
            family_id = found[1].family_id
            async with services.engine.connect() as conn:
                unused = await conn.scalar(
                    sa.text(
                        "SELECT count(*) FROM refresh_tokens"
                        " WHERE family_id = :f AND rotated_at IS NULL"
                    ),
                    {"f": family_id},
                )
            return found[1].revoked_at is not None, int(unused)
        finally:
            await services.close()

    return asyncio.run(read())


@pytest.fixture
def second_node(settings: Settings, server: ServerThread) -> Iterator[ServerThread]:
    """Another server on the same database: its own process state, caches and pool."""
    with ServerThread(settings) as node:
        yield node


def at_once(calls: list[Any]) -> list[httpx.Response]:
    """Each call in a thread of its own, released together."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.mark.backends("postgresql")
def test_two_nodes_at_the_same_moment_end_on_one_chain(
    server: ServerThread,
    second_node: ServerThread,
    http: httpx.Client,
    web_app: Registered,
    settings: Settings,
) -> None:
    """Issue 20's measure, with default settings: 100 rounds of one refresh token sent to two
    nodes at once. Every round leaves exactly one live chain and no revoked family."""
    token = tokens_for(server, http, web_app)["refresh_token"]
    auth = (web_app.client_id, web_app.secret or "")
    with (
        httpx.Client(base_url=server.base_url, timeout=20) as a,
        httpx.Client(base_url=second_node.base_url, timeout=20) as b,
    ):
        for node in (a, b):  # connections open before the race
            assert node.get("/healthz").status_code == 200
        for round_ in range(100):
            form = {"grant_type": "refresh_token", "refresh_token": token}
            answers = at_once(
                [functools.partial(node.post, "/token", data=form, auth=auth) for node in (a, b)]
            )
            assert [r.status_code for r in answers] == [200, 200], (round_, answers[0].text)
            successors = {r.json()["refresh_token"] for r in answers}
            assert len(successors) == 1, round_
            token = successors.pop()
            if round_ % 25 == 24:
                assert family_state(settings, token) == (False, 1)
    assert family_state(settings, token) == (False, 1)
    assert refresh(http, web_app, token).status_code == 200


def test_many_duplicates_at_once_are_reuse(
    server: ServerThread, http: httpx.Client, web_app: Registered, settings: Settings
) -> None:
    """50 at once: never two chains, no more than the rotation and MAX_DUPLICATES answered, and
    the rest, more than a handful, are reuse: the family ends. Each duplicate answered and the
    reuse are in the audit trail."""
    token = tokens_for(server, http, web_app)["refresh_token"]

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as h:
            form = {"grant_type": "refresh_token", "refresh_token": token}
            auth = (web_app.client_id, web_app.secret or "")
            return list(
                await asyncio.gather(*(h.post("/token", data=form, auth=auth) for _ in range(50)))
            )

    responses = asyncio.run(race())
    assert {r.status_code for r in responses} <= {200, 400}
    answered = [r for r in responses if r.status_code == 200]
    assert 1 <= len(answered) <= 1 + MAX_DUPLICATES
    assert len({r.json()["refresh_token"] for r in answered}) == 1  # one chain
    assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code == 400)
    revoked, _ = family_state(settings, token)
    assert revoked
    assert refresh(http, web_app, answered[0].json()["refresh_token"]).status_code == 400
    found = events(settings, {"token.refresh_duplicate", "token.reuse_detected"})
    assert len(named(found, "token.refresh_duplicate")) == len(answered) - 1


def test_a_duplicate_from_another_client_ends_the_family(
    server: ServerThread,
    http: httpx.Client,
    web_app: Registered,
    register: Registrar,
    settings: Settings,
) -> None:
    other = register(
        NewClient(
            "Other",
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=(CALLBACK,),
            scope="openid api:read",
        )
    )
    first = tokens_for(server, http, web_app)["refresh_token"]
    successor = refresh(http, web_app, first).json()["refresh_token"]
    assert refresh(http, other, first).json()["error"] == "invalid_grant"
    assert family_state(settings, first)[0]
    assert refresh(http, web_app, successor).json()["error"] == "invalid_grant"
    # A live one is refused and left as it was: a stranger cannot end a grant it never held.
    live = tokens_for(server, http, web_app)["refresh_token"]
    assert refresh(http, other, live).json()["error"] == "invalid_grant"
    assert refresh(http, web_app, live).status_code == 200


def test_a_duplicate_with_another_credential_is_reuse(
    server: ServerThread,
    http: httpx.Client,
    web_app: Registered,
    settings: Settings,
) -> None:
    """During a rotation of the client's secret its previous secret still authenticates it, but
    a duplicate must authenticate as the rotation did."""
    new_secret = generate_client_secret()

    async def rotate_secret() -> None:
        services = await open_services(settings)
        try:
            now = services.clock.now()
            digest = keyed_hash(services.master.pepper, new_secret)
            await services.clients.replace_secret(web_app.client_id, digest, now + 3600, now)
        finally:
            await services.close()

    asyncio.run(rotate_secret())
    rotated = Registered(web_app.client_id, new_secret)
    first = tokens_for(server, http, rotated)["refresh_token"]
    assert refresh(http, rotated, first).status_code == 200
    assert refresh(http, web_app, first).json()["error"] == "invalid_grant"  # the old secret
    assert family_state(settings, first)[0]


@pytest.mark.backends("postgresql")
def test_a_duplicate_waits_for_the_winner_to_commit(
    server: ServerThread, http: httpx.Client, web_app: Registered, settings: Settings
) -> None:
    """The winner's transaction is held open (a lock on the family's row, taken as the claim
    takes it); a duplicate sent meanwhile waits for it, then gets the winner's successor."""
    first = tokens_for(server, http, web_app)["refresh_token"]
    held = threading.Event()
    release = threading.Event()

    async def hold_family() -> None:
        services = await open_services(settings)
        try:
            found = await services.refresh.get(keyed_hash(services.master.pepper, first))
            assert found is not None
            async with services.engine.begin() as conn:
                await conn.execute(
                    sa.text("SELECT 1 FROM refresh_families WHERE family_id = :f FOR UPDATE"),
                    {"f": found[1].family_id},
                )
                held.set()
                await asyncio.to_thread(release.wait, 10)
        finally:
            await services.close()

    holder = threading.Thread(target=lambda: asyncio.run(hold_family()))
    holder.start()
    assert held.wait(10)
    answers: list[httpx.Response] = []
    calls = [
        threading.Thread(target=lambda: answers.append(refresh(http, web_app, first)))
        for _ in range(2)
    ]
    for call in calls:
        call.start()
    for call in calls:
        call.join(0.5)
    assert not answers  # both wait on the family's row: neither claimed, neither refused
    release.set()
    holder.join(10)
    for call in calls:
        call.join(10)
    assert [r.status_code for r in answers] == [200, 200]
    assert len({r.json()["refresh_token"] for r in answers}) == 1
    assert family_state(settings, first) == (False, 1)
