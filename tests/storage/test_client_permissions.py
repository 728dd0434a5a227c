"""A client's right to vouch for its callers' addresses (client_ip), stored on both databases."""

from __future__ import annotations

import pytest

from tests.support import OFFERED
from tokensmith.oauth.clients import NewClient, generate_client_id
from tokensmith.runtime.services import Services

pytestmark = pytest.mark.anyio

NOW = 1_700_000_000


async def test_vouching_is_off_unless_granted_and_can_be_withdrawn(services: Services) -> None:
    plain = NewClient("svc", grant_types=("client_credentials",)).validated(
        generate_client_id(), b"h" * 32, NOW, offered=OFFERED
    )
    gateway = NewClient(
        "gateway", grant_types=("client_credentials",), may_vouch_client_ip=True
    ).validated(generate_client_id(), b"g" * 32, NOW, offered=OFFERED)
    for client in (plain, gateway):
        await services.clients.add(client)
    stored = {c.client_id: c.may_vouch_client_ip for c in await services.clients.list()}
    assert stored == {plain.client_id: False, gateway.client_id: True}

    assert await services.clients.set_may_vouch_client_ip(plain.client_id, True, NOW + 1)
    assert await services.clients.set_may_vouch_client_ip(gateway.client_id, False, NOW + 1)
    granted = await services.clients.get(plain.client_id)
    withdrawn = await services.clients.get(gateway.client_id)
    assert granted is not None and granted.may_vouch_client_ip and granted.updated_at == NOW + 1
    assert withdrawn is not None and not withdrawn.may_vouch_client_ip
    assert not await services.clients.set_may_vouch_client_ip("nobody", True, NOW)


async def test_a_public_client_never_vouches(services: Services) -> None:
    public = NewClient("spa", is_public=True, redirect_uris=("https://spa.test/cb",)).validated(
        generate_client_id(), None, NOW, offered=OFFERED
    )
    await services.clients.add(public)
    assert not await services.clients.set_may_vouch_client_ip(public.client_id, True, NOW)
    stored = await services.clients.get(public.client_id)
    assert stored is not None and not stored.may_vouch_client_ip
