"""The races a test cannot hit by timing, made to happen: the rival runs inside the winner's gap.

A store wrapper lets the winner claim the code or the refresh token, then runs the rival request
to completion before the winner writes anything. Whatever the winner then issues must be dead.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tokensmith.accounts.sessions import Session
from tokensmith.accounts.users import User, hash_password
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
from tokensmith.web.protocol import build_protocol

pytestmark = pytest.mark.anyio
CALLBACK = "https://app.example.com/cb"
VERIFIER = "v" * 50


async def setup(services: Services) -> tuple[GrantDeps, Client, str]:
    now = services.clock.now()
    user = User("u1", "alice", None, hash_password("correct horse"), now - 10, now - 10)
    await services.users.add(user)
    client = NewClient(
        "app",
        grant_types=("authorization_code", "refresh_token"),
        redirect_uris=(CALLBACK,),
        scope="openid api",
    ).validated("c1", b"x" * 32, now)
    await services.clients.add(client)
    request = AuthorizationRequest("c1", CALLBACK, "openid api", None, s256(VERIFIER))
    session = Session(b"s" * 32, "u1", now, "pwd", now, now + 3600)
    code = await issue_code(services.codes, services.master.pepper, now, request, "u1", session)
    return build_protocol(services).deps, client, code


def code_params(code: str) -> Params:
    return Params(
        [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ]
    )


async def test_refresh_reuse_inside_the_rotation(services: Services) -> None:
    deps, client, code = await setup(services)
    first = await exchange_code(deps, client, code_params(code))
    params = Params([("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"])])
    rival: list[BaseException] = []

    class ReuseAfterRotate:
        def __getattr__(self, name: str) -> Any:
            return getattr(deps.refresh, name)

        async def rotate(self, *args: Any, **kwargs: Any) -> Any:
            result = await deps.refresh.rotate(*args, **kwargs)
            try:  # a stolen copy is presented now, before our access token is stored
                await rotate_refresh_token(deps, client, params)
            except InvalidGrant as exc:
                rival.append(exc)
            return result

    racing = dataclasses.replace(deps, refresh=ReuseAfterRotate())  # type: ignore[arg-type]
    with pytest.raises(InvalidGrant):
        await rotate_refresh_token(racing, client, params)
    assert len(rival) == 1
    found = await services.refresh.get(keyed_hash(services.master.pepper, first["refresh_token"]))
    assert found is not None
    family_id = found[1].family_id
    assert found[1].revoked_at is not None
    # No access token of the family is left alive, including the one the winner stored last.
    assert await services.tokens.revoke_by_family(family_id, services.clock.now()) == 0
