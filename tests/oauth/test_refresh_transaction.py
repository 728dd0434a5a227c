"""A grant's writes are one transaction (issue 21, part 5): a spent refresh is never behind a 503.

The database is cut through a proxy at the two moments that matter: right after the rotation
committed (the client still gets its successor: nothing is read after the commit), and as the
rotation is sent (the grant fails as unavailable, and the token is not spent).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.faults import FaultProxy
from tests.oauth.test_grant_races import code_params, setup
from tests.support import POSTGRES_URL, token_request
from tokensmith.core.clock import FrozenClock
from tokensmith.errors import InvalidGrant
from tokensmith.oauth.code_exchange import exchange_code
from tokensmith.oauth.params import Params
from tokensmith.oauth.refresh_rotation import rotate_refresh_token
from tokensmith.persistence.database import DATABASE_ERRORS
from tokensmith.runtime.services import Services, open_services
from tokensmith.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.backends("postgresql")]


@pytest.fixture
async def proxied_services(
    settings: Settings, clock: FrozenClock
) -> AsyncIterator[tuple[Services, FaultProxy]]:
    """Services on the test's PostgreSQL schema, through a proxy the test can cut."""
    with FaultProxy(5432) as proxy:
        url = POSTGRES_URL.replace("127.0.0.1:5432", proxy.url_port)
        through = settings.model_copy(update={"database_url": url})
        services = await open_services(through, clock=clock, apply_migrations=True)
        try:
            yield services, proxy
        finally:
            await services.close()


async def test_a_database_lost_after_the_rotation_commits_costs_nothing(
    proxied_services: tuple[Services, FaultProxy],
) -> None:
    """The database goes away right after the rotation committed: the client still gets its
    successor (nothing is read after the commit), which works once the database is back."""
    services, proxy = proxied_services
    deps, client, code = await setup(services, refresh_grace=0)
    first = await exchange_code(deps, client, token_request(code_params(code)))
    params = Params([("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"])])

    class CutAfterRotate:
        def __getattr__(self, name: str) -> Any:
            return getattr(deps.refresh, name)

        async def rotate(self, *args: Any, **kwargs: Any) -> Any:
            result = await deps.refresh.rotate(*args, **kwargs)
            await asyncio.to_thread(proxy.cut)
            return result

    cutting = dataclasses.replace(deps, refresh=CutAfterRotate())  # type: ignore[arg-type]
    answer = await rotate_refresh_token(cutting, client, token_request(params))
    await asyncio.to_thread(proxy.heal)
    again = Params([("grant_type", "refresh_token"), ("refresh_token", answer["refresh_token"])])
    assert "refresh_token" in await rotate_refresh_token(deps, client, token_request(again))


async def test_a_database_lost_before_the_commit_spends_nothing(
    proxied_services: tuple[Services, FaultProxy],
) -> None:
    """The database goes away as the rotation is sent: the grant fails as unavailable, and the
    token is not spent: once the database is back, the same token refreshes, no reuse."""
    services, proxy = proxied_services
    deps, client, code = await setup(services, refresh_grace=0)
    first = await exchange_code(deps, client, token_request(code_params(code)))
    params = Params([("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"])])

    class CutBeforeRotate:
        def __getattr__(self, name: str) -> Any:
            return getattr(deps.refresh, name)

        async def rotate(self, *args: Any, **kwargs: Any) -> Any:
            await asyncio.to_thread(proxy.cut)
            return await deps.refresh.rotate(*args, **kwargs)

    cutting = dataclasses.replace(deps, refresh=CutBeforeRotate())  # type: ignore[arg-type]
    with pytest.raises(DATABASE_ERRORS):
        await rotate_refresh_token(cutting, client, token_request(params))
    await asyncio.to_thread(proxy.heal)
    answer = await rotate_refresh_token(deps, client, token_request(params))
    assert "refresh_token" in answer
    with pytest.raises(InvalidGrant):  # and it was this one that spent it
        await rotate_refresh_token(deps, client, token_request(params))
