"""Refresh families end: an absolute lifetime from the login, and an idle timeout (both DBs)."""

from __future__ import annotations

import dataclasses

import pytest

from tests.oauth.test_grant_races import code_params, setup
from tests.support import token_request
from tokensmith.core.clock import FrozenClock
from tokensmith.core.secrets import keyed_hash
from tokensmith.errors import InvalidGrant
from tokensmith.oauth.code_exchange import exchange_code
from tokensmith.oauth.issuance import GrantDeps
from tokensmith.oauth.params import Params
from tokensmith.oauth.refresh_rotation import rotate_refresh_token
from tokensmith.runtime.services import Services

# About storage end to end: on both databases.
pytestmark = [pytest.mark.anyio, pytest.mark.backends("sqlite", "postgresql")]


def refresh(token: str) -> Params:
    return Params([("grant_type", "refresh_token"), ("refresh_token", token)])


def with_policy(deps: GrantDeps, **changes: int) -> GrantDeps:
    return dataclasses.replace(deps, policy=dataclasses.replace(deps.policy, **changes))


async def expiry_of(services: Services, token: str) -> int:
    found = await services.refresh.get(keyed_hash(services.master.pepper, token))
    assert found is not None
    return found[0].expires_at


async def test_an_idle_family_ends(services: Services, clock: FrozenClock) -> None:
    deps, client, code = await setup(services)
    deps = with_policy(deps, idle_timeout=3600)
    start = clock.now()
    token = (await exchange_code(deps, client, token_request(code_params(code))))["refresh_token"]
    assert await expiry_of(services, token) == start + 3600
    clock.advance(3000)
    token = (await rotate_refresh_token(deps, client, token_request(refresh(token))))[
        "refresh_token"
    ]
    clock.advance(3601)
    with pytest.raises(InvalidGrant):
        await rotate_refresh_token(deps, client, token_request(refresh(token)))


async def test_a_family_ends_at_its_absolute_lifetime(
    services: Services, clock: FrozenClock
) -> None:
    deps, client, code = await setup(services)
    deps = with_policy(deps, idle_timeout=3600, family_max_lifetime=7200)
    start = clock.now()
    token = (await exchange_code(deps, client, token_request(code_params(code))))["refresh_token"]
    for _ in range(2):  # used well within the idle timeout each time
        clock.advance(3000)
        token = (await rotate_refresh_token(deps, client, token_request(refresh(token))))[
            "refresh_token"
        ]
    assert await expiry_of(services, token) == start + 7200  # cut to the family's end
    clock.advance(1300)
    with pytest.raises(InvalidGrant):
        await rotate_refresh_token(deps, client, token_request(refresh(token)))


async def test_shortened_settings_apply_to_existing_families(
    services: Services, clock: FrozenClock
) -> None:
    deps, client, code = await setup(services)
    token = (await exchange_code(deps, client, token_request(code_params(code))))["refresh_token"]
    clock.advance(120)
    for shorter in ({"idle_timeout": 60}, {"family_max_lifetime": 100}):
        with pytest.raises(InvalidGrant):
            await rotate_refresh_token(
                with_policy(deps, **shorter), client, token_request(refresh(token))
            )
    # Refused without rotating: under the settings it was issued with, it still works.
    assert "access_token" in await rotate_refresh_token(deps, client, token_request(refresh(token)))
