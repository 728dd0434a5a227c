"""The races a test cannot hit by timing, made to happen: the rival runs inside the winner's gap.

A store wrapper lets the winner claim the code or the refresh token, then runs the rival request
to completion before the winner writes anything. Whatever the winner then issues must be dead.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tests.support import OFFERED, token_request
from tokensmith.accounts.sessions import Session
from tokensmith.accounts.users import User, hash_password
from tokensmith.core.clock import FrozenClock
from tokensmith.core.secrets import keyed_hash
from tokensmith.errors import InvalidGrant
from tokensmith.oauth.authorization import AuthorizationRequest, issue_code
from tokensmith.oauth.clients import Client, NewClient
from tokensmith.oauth.code_exchange import exchange_code
from tokensmith.oauth.issuance import GrantDeps
from tokensmith.oauth.params import Params
from tokensmith.oauth.pkce import s256
from tokensmith.oauth.refresh_rotation import rotate_refresh_token
from tokensmith.runtime.services import Services

# About storage end to end: on both databases.
pytestmark = [pytest.mark.anyio, pytest.mark.backends("sqlite", "postgresql")]
CALLBACK = "https://app.example.com/cb"
VERIFIER = "v" * 50


async def setup(
    services: Services, refresh_grace: int | None = None
) -> tuple[GrantDeps, Client, str]:
    now = services.clock.now()
    user = User("u1", "alice", None, hash_password("correct horse"), now - 10, now - 10)
    await services.users.add(user)
    client = NewClient(
        "app",
        grant_types=("authorization_code", "refresh_token"),
        redirect_uris=(CALLBACK,),
        scope="openid api",
        refresh_grace=refresh_grace,
    ).validated("c1", b"x" * 32, now, offered=OFFERED)
    await services.clients.add(client)
    request = AuthorizationRequest("c1", CALLBACK, "openid api", None, s256(VERIFIER))
    session = Session(b"s" * 32, "u1", now, "pwd", now, now + 3600)
    code = await issue_code(services.codes, services.master.pepper, now, request, "u1", session)
    return services.protocol.deps, client, code


def code_params(code: str) -> Params:
    return Params(
        [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ]
    )


@pytest.mark.parametrize("grace", [0, None])
async def test_refresh_reuse_inside_the_rotation(services: Services, grace: int | None) -> None:
    """The rival presents the token right after the winner's rotation committed. With the
    window off it is reuse: the family ends, with the access token the winner stored. With the
    server's window it is a duplicate: both end up on the one successor, and nothing is revoked.
    """
    deps, client, code = await setup(services, refresh_grace=grace)
    first = await exchange_code(deps, client, token_request(code_params(code)))
    params = Params([("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"])])
    rival: list[BaseException | dict[str, Any]] = []

    class ReuseAfterRotate:
        def __getattr__(self, name: str) -> Any:
            return getattr(deps.refresh, name)

        async def rotate(self, *args: Any, **kwargs: Any) -> Any:
            result = await deps.refresh.rotate(*args, **kwargs)
            try:  # a copy is presented now, before the winner has answered
                rival.append(await rotate_refresh_token(deps, client, token_request(params)))
            except InvalidGrant as exc:
                rival.append(exc)
            return result

    racing = dataclasses.replace(deps, refresh=ReuseAfterRotate())  # type: ignore[arg-type]
    winner = await rotate_refresh_token(racing, client, token_request(params))
    assert len(rival) == 1
    found = await services.refresh.get(keyed_hash(services.master.pepper, first["refresh_token"]))
    assert found is not None
    family_id = found[1].family_id
    successor = await services.refresh.get(keyed_hash(deps.pepper, winner["refresh_token"]))
    assert successor is not None
    if grace == 0:
        assert isinstance(rival[0], InvalidGrant)
        assert found[1].revoked_at is not None
        # No access token of the family is left alive, including the one the winner stored.
        assert await services.tokens.revoke_by_family(family_id, services.clock.now()) == 0
    else:
        assert isinstance(rival[0], dict)
        assert rival[0]["refresh_token"] == winner["refresh_token"]
        assert found[1].revoked_at is None and successor[0].rotated_at is None


@pytest.mark.parametrize("store", ["refresh", "tokens"])
async def test_code_replay_while_the_first_exchange_stores(services: Services, store: str) -> None:
    """SECURITY.md case 22: the replay runs to completion after the winner consumed the code
    but before it stored its refresh family (or its access token). The replay's revocation
    finds nothing yet; the winner's re-check of the replay mark must revoke what it stored."""
    deps, client, code = await setup(services)
    params = code_params(code)
    rival: list[BaseException] = []
    inner = getattr(deps, store)
    method = "create_family" if store == "refresh" else "add"

    class ReplayBeforeStore:
        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

    async def replay_then_store(*args: Any, **kwargs: Any) -> Any:
        try:
            await exchange_code(deps, client, token_request(params))
        except InvalidGrant as exc:
            rival.append(exc)
        return await getattr(inner, method)(*args, **kwargs)

    wrapper = ReplayBeforeStore()
    setattr(wrapper, method, replay_then_store)
    racing = dataclasses.replace(deps, **{store: wrapper})  # type: ignore[arg-type]
    if store == "tokens":  # the responder stores the access token
        responder = dataclasses.replace(deps.responder, tokens=wrapper)  # type: ignore[arg-type]
        racing = dataclasses.replace(racing, responder=responder)
    with pytest.raises(InvalidGrant):
        await exchange_code(racing, client, token_request(params))
    assert len(rival) == 1
    code_hash = keyed_hash(services.master.pepper, code)
    now = services.clock.now()
    # Every token the code produced is dead: nothing is left to revoke.
    assert await services.tokens.revoke_by_code(code_hash, now) == 0
    assert await services.refresh.revoke_by_code(code_hash, now, "test") == 0
    stored = await services.codes.get(code_hash)
    assert stored is not None and stored.replayed_at is not None


async def test_code_replay_after_refreshes_revokes_the_refreshed_tokens(
    services: Services, clock: FrozenClock
) -> None:
    """SECURITY.md case 21, 30 s later: the access tokens the code's family produced by
    refreshing go too, not only the one issued with the code."""
    deps, client, code = await setup(services)
    first = await exchange_code(deps, client, token_request(code_params(code)))
    refresh = Params([("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"])])
    refreshed = await rotate_refresh_token(deps, client, token_request(refresh))
    clock.advance(30)
    with pytest.raises(InvalidGrant):
        await exchange_code(deps, client, token_request(code_params(code)))
    inspector = services.protocol.inspector
    for body in (first, refreshed):
        assert await inspector.active_token(body["access_token"]) is None
    again = Params([("grant_type", "refresh_token"), ("refresh_token", refreshed["refresh_token"])])
    with pytest.raises(InvalidGrant):
        await rotate_refresh_token(deps, client, token_request(again))
