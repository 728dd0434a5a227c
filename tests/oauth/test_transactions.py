"""The code and refresh grants store what they issue in one transaction (oauth/transactions.py).

On real storage: a write that fails leaves nothing of the grant stored (SECURITY.md cases 54 and
64), a user who cannot be issued to is refused exactly as before, and each grant costs the
statements and commits it was designed to.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from tests.oauth.test_grant_races import code_params, setup
from tests.support import token_request
from tokensmith.accounts.sessions import Session
from tokensmith.accounts.users import User, hash_password
from tokensmith.core.secrets import keyed_hash
from tokensmith.errors import InvalidGrant
from tokensmith.oauth.authorization import AuthorizationRequest, issue_code
from tokensmith.oauth.code_exchange import exchange_code
from tokensmith.oauth.issuance import GrantDeps
from tokensmith.oauth.params import Params
from tokensmith.oauth.pkce import s256
from tokensmith.oauth.refresh_rotation import rotate_refresh_token
from tokensmith.persistence.connections import connections_for
from tokensmith.runtime.services import Services

pytestmark = [pytest.mark.anyio, pytest.mark.backends("sqlite", "postgresql")]


def refresh_params(token: str) -> Params:
    return Params([("grant_type", "refresh_token"), ("refresh_token", token)])


def storing_twice(deps: GrantDeps) -> GrantDeps:
    """The access token's record added to the transaction twice: its last write fails."""
    inner = deps.tokens

    class Twice:
        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

        async def add(self, *args: Any, **kwargs: Any) -> None:
            await inner.add(*args, **kwargs)
            await inner.add(*args, **kwargs)

    twice: Any = Twice()
    responder = dataclasses.replace(deps.responder, tokens=twice)
    return dataclasses.replace(deps, tokens=twice, responder=responder)


async def test_a_code_exchange_whose_write_fails_stores_nothing(services: Services) -> None:
    deps, client, code = await setup(services)
    with pytest.raises(sa.exc.IntegrityError):
        await exchange_code(storing_twice(deps), client, token_request(code_params(code)))
    code_hash = keyed_hash(services.master.pepper, code)
    now = services.clock.now()
    assert await services.refresh.revoke_by_code(code_hash, now, "test") == 0  # no family
    assert await services.tokens.revoke_by_code(code_hash, now) == 0  # no access token
    with pytest.raises(InvalidGrant):  # and the code stays spent: single use
        await exchange_code(deps, client, token_request(code_params(code)))


async def test_a_refresh_whose_write_fails_does_not_rotate(services: Services) -> None:
    deps, client, code = await setup(services)
    first = await exchange_code(deps, client, token_request(code_params(code)))
    token = first["refresh_token"]
    with pytest.raises(sa.exc.IntegrityError):
        await rotate_refresh_token(
            storing_twice(deps), client, token_request(refresh_params(token))
        )
    found = await services.refresh.get(keyed_hash(services.master.pepper, token))
    assert found is not None and found[0].rotated_at is None and found[1].revoked_at is None
    retry = await rotate_refresh_token(deps, client, token_request(refresh_params(token)))
    assert retry["refresh_token"] != token


@pytest.mark.parametrize("user", ["disabled", "missing"])
async def test_a_code_of_a_user_who_cannot_sign_in_issues_nothing(
    services: Services, user: str
) -> None:
    deps, client, _ = await setup(services)
    now = services.clock.now()
    if user == "disabled":
        bob = User("u2", "bob", None, hash_password("correct horse"), now, now, disabled=True)
        await services.users.add(bob)
    request = AuthorizationRequest(
        "c1", client.redirect_uris[0], "openid api", None, s256("v" * 50)
    )
    session = Session(b"t" * 32, "u2", now, "pwd", now, now + 3600)
    code = await issue_code(services.codes, services.master.pepper, now, request, "u2", session)
    with pytest.raises(InvalidGrant):
        await exchange_code(deps, client, token_request(code_params(code)))
    code_hash = keyed_hash(services.master.pepper, code)
    assert await services.refresh.revoke_by_code(code_hash, now, "test") == 0
    assert await services.tokens.revoke_by_code(code_hash, now) == 0
    stored = await services.codes.get(code_hash)
    assert stored is not None and stored.consumed_at is not None and stored.replayed_at is None


async def test_a_refresh_of_a_disabled_user_ends_the_family(services: Services) -> None:
    deps, client, code = await setup(services)
    first = await exchange_code(deps, client, token_request(code_params(code)))
    engine = connections_for(services.engine)
    async with engine.begin() as conn:  # no store disables a user in place; an operator might
        await conn.execute(sa.text("UPDATE users SET disabled = true WHERE user_id = 'u1'"))
    with pytest.raises(InvalidGrant):
        await rotate_refresh_token(
            deps, client, token_request(refresh_params(first["refresh_token"]))
        )
    found = await services.refresh.get(keyed_hash(services.master.pepper, first["refresh_token"]))
    assert found is not None and found[1].revoked_reason == "credentials_changed"
    assert found[0].rotated_at is None
    assert await services.protocol.inspector.active_token(first["access_token"]) is None


@contextmanager
def counted(services: Services) -> Iterator[dict[str, int]]:
    engine = connections_for(services.engine).sync_engine
    seen = {"statements": 0, "commits": 0}

    def statement(*_: Any) -> None:
        seen["statements"] += 1

    def commit(*_: Any) -> None:
        seen["commits"] += 1

    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(engine, "commit", commit)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", statement)
        sa.event.remove(engine, "commit", commit)


async def test_what_each_grant_costs_the_database(services: Services) -> None:
    """A code exchange: the code consumed (1 statement, 1 commit), then the family, its first
        token and the access token's record with the code's guard (4, 1). A refresh: one read with
        the user, then the claim (holding the family), the successor and the record (3, 1). Nothing
    after the commit: a database lost then cannot turn a spent token into a 503."""
    deps, client, code = await setup(services)
    with counted(services) as exchange:
        first = await exchange_code(deps, client, token_request(code_params(code)))
    with counted(services) as refresh:
        await rotate_refresh_token(
            deps, client, token_request(refresh_params(first["refresh_token"]))
        )
    assert exchange == {"statements": 5, "commits": 2}
    assert refresh == {"statements": 4, "commits": 1}
