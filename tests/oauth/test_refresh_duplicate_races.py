"""What a duplicate refresh sees when it waits on the family's row (issue 20, reviewed).

On PostgreSQL a duplicate's guard and a rotation's claim wait for a transaction that holds the
family's row. Whatever that transaction committed meanwhile must count: a successor used there
closes the window (security.md case 170), and a revocation there leaves no live access token
behind, whichever of its two transactions the waiting grant lands between (case 171).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import sqlalchemy as sa

from tests.oauth.conftest import Registered
from tests.oauth.test_authorization import refresh, tokens_for
from tests.oauth.test_refresh_duplicates import family_state
from tests.support import ServerThread
from tokensmith.core.secrets import keyed_hash
from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings

pytestmark = [pytest.mark.usefixtures("alice"), pytest.mark.backends("postgresql")]

_LOCK = sa.text("SELECT 1 FROM refresh_families WHERE family_id = :f FOR UPDATE")
_USE = sa.text("UPDATE refresh_tokens SET rotated_at = :now WHERE token_hash = :h")
_REVOKE = sa.text(
    "UPDATE refresh_families SET revoked_at = :now, revoked_reason = 'test' WHERE family_id = :f"
)
# ``TokenStore.revoke_by_family``: the revoker's second transaction.
_REVOKE_ACCESS = sa.text(
    "UPDATE issued_tokens SET revoked_at = :now WHERE family_id = :f AND revoked_at IS NULL"
)
_LIVE_ACCESS = sa.text(
    "SELECT count(*) FROM issued_tokens WHERE family_id = :f AND revoked_at IS NULL"
)


@contextmanager
def holding(settings: Settings, token: str, statements: list[sa.TextClause]) -> Iterator[None]:
    """A transaction that holds ``token``'s family row and runs ``statements`` (``:f`` the
    family, ``:h`` the keyed hash of the token's successor, ``:now``), open until the block
    ends; then it commits and the revoker's second transaction runs."""
    held = threading.Event()
    release = threading.Event()

    async def hold() -> None:
        services = await open_services(settings)
        try:
            found = await services.refresh.get(keyed_hash(services.master.pepper, token))
            assert found is not None
            values = {
                "f": found[1].family_id,
                "h": found[0].successor_hash,
                "now": services.clock.now(),
            }
            async with services.engine.begin() as conn:
                await conn.execute(_LOCK, values)
                for statement in statements:
                    await conn.execute(statement, values)
                held.set()
                await asyncio.to_thread(release.wait, 10)
            if _REVOKE in statements:
                async with services.engine.begin() as conn:
                    await conn.execute(_REVOKE_ACCESS, values)
        finally:
            await services.close()

    holder = threading.Thread(target=lambda: asyncio.run(hold()))
    holder.start()
    try:
        assert held.wait(10)
        yield
    finally:
        release.set()
        holder.join(10)


def waiting_refresh(http: httpx.Client, client: Registered, token: str) -> threading.Thread:
    """A refresh started now, left waiting (checked) on the held row."""
    answers: list[httpx.Response] = []
    call = threading.Thread(target=lambda: answers.append(refresh(http, client, token)))
    call.answers = answers  # type: ignore[attr-defined]
    call.start()
    call.join(0.5)
    assert not answers, answers[0].text  # it waits for the holder
    return call


def answer_of(call: threading.Thread) -> httpx.Response:
    call.join(10)
    answers: list[httpx.Response] = call.answers  # type: ignore[attr-defined]
    assert len(answers) == 1
    return answers[0]


def live_access_tokens(settings: Settings, token: str) -> int:
    async def count() -> int:
        services = await open_services(settings)
        try:
            found = await services.refresh.get(keyed_hash(services.master.pepper, token))
            assert found is not None
            async with services.engine.connect() as conn:
                return int(await conn.scalar(_LIVE_ACCESS, {"f": found[1].family_id}) or 0)
        finally:
            await services.close()

    return asyncio.run(count())


def test_a_successor_used_while_a_duplicate_waits_closes_the_window(
    server: ServerThread, http: httpx.Client, web_app: Registered, settings: Settings
) -> None:
    """Case 170. The successor's rotation commits while a duplicate of its predecessor waits on
    the family's row: the duplicate is an older generation now, reuse, not an answer."""
    first = tokens_for(server, http, web_app)["refresh_token"]
    assert refresh(http, web_app, first).status_code == 200
    with holding(settings, first, [_USE]):
        call = waiting_refresh(http, web_app, first)
    duplicate = answer_of(call)
    assert duplicate.status_code == 400, duplicate.text
    assert duplicate.json()["error"] == "invalid_grant"
    assert family_state(settings, first)[0]


def test_a_revocation_while_a_duplicate_waits_leaves_no_access_token(
    server: ServerThread, http: httpx.Client, web_app: Registered, settings: Settings
) -> None:
    """Case 171. The family is revoked (committed) while a duplicate waits, and its access
    tokens are revoked after: the duplicate stores no access token the revocation missed."""
    first = tokens_for(server, http, web_app)["refresh_token"]
    assert refresh(http, web_app, first).status_code == 200
    with holding(settings, first, [_REVOKE]):
        call = waiting_refresh(http, web_app, first)
    assert answer_of(call).json()["error"] == "invalid_grant"
    assert live_access_tokens(settings, first) == 0


def test_a_revocation_while_a_rotation_waits_leaves_no_access_token(
    server: ServerThread, http: httpx.Client, web_app: Registered, settings: Settings
) -> None:
    """Case 171, the claim's side: a rotation that waited for a revocation finds the family
    revoked, rotates nothing and stores nothing."""
    first = tokens_for(server, http, web_app)["refresh_token"]
    with holding(settings, first, [_REVOKE]):
        call = waiting_refresh(http, web_app, first)
    assert answer_of(call).json()["error"] == "invalid_grant"
    assert live_access_tokens(settings, first) == 0
    assert family_state(settings, first) == (True, 1)  # the first token was never claimed
