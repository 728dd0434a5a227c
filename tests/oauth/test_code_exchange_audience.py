"""The audience of a code exchange's access token (RFC 8707): the resources asked for at the token
endpoint, else those of the authorization request, else the default audience; a resource the
client may not have is refused before the code is spent."""

from __future__ import annotations

from typing import Any

import pytest

from tests.oauth.test_grant_races import CALLBACK, VERIFIER, code_params
from tests.support import OFFERED, token_request
from tokensmith.accounts.sessions import Session
from tokensmith.accounts.users import User, hash_password
from tokensmith.core.secrets import b64url_json
from tokensmith.errors import InvalidTarget
from tokensmith.oauth.authorization import AuthorizationRequest, issue_code
from tokensmith.oauth.clients import Client, NewClient
from tokensmith.oauth.code_exchange import exchange_code
from tokensmith.oauth.params import Params
from tokensmith.oauth.pkce import s256
from tokensmith.runtime.services import Services

pytestmark = pytest.mark.anyio
ORDERS = "https://orders.example.com"
BILLING = "https://billing.example.com"


async def _client_and_code(services: Services, resource: tuple[str, ...]) -> tuple[Client, str]:
    now = services.clock.now()
    user = User("u1", "alice", None, hash_password("correct horse"), now - 10, now - 10)
    await services.users.add(user)
    client = NewClient(
        "app",
        grant_types=("authorization_code",),
        redirect_uris=(CALLBACK,),
        scope="openid api",
        allowed_resources=(ORDERS, BILLING),
    ).validated("c1", b"x" * 32, now, offered=OFFERED)
    await services.clients.add(client)
    request = AuthorizationRequest(
        "c1", CALLBACK, "openid api", None, s256(VERIFIER), resource=resource
    )
    session = Session(b"s" * 32, "u1", now, "pwd", now, now + 3600)
    code = await issue_code(services.codes, services.master.pepper, now, request, "u1", session)
    return client, code


def _audience(body: dict[str, Any]) -> Any:
    return b64url_json(body["access_token"].split(".")[1])["aud"]


async def _exchange(services: Services, client: Client, params: Params) -> dict[str, Any]:
    return await exchange_code(services.protocol.deps, client, token_request(params))


def _with_resources(code: str, *resources: str) -> Params:
    return Params(
        [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
            *(("resource", resource) for resource in resources),
        ]
    )


async def test_the_resources_asked_for_at_the_token_endpoint(services: Services) -> None:
    client, code = await _client_and_code(services, (ORDERS,))
    body = await _exchange(services, client, _with_resources(code, BILLING, ORDERS))
    assert _audience(body) == [BILLING, ORDERS]


async def test_else_those_of_the_authorization_request(services: Services) -> None:
    client, code = await _client_and_code(services, (ORDERS,))
    assert _audience(await _exchange(services, client, code_params(code))) == ORDERS


async def test_else_the_default_audience(services: Services) -> None:
    client, code = await _client_and_code(services, ())
    body = await _exchange(services, client, code_params(code))
    assert _audience(body) == services.protocol.deps.policy.default_audience


async def test_a_resource_the_client_may_not_have_leaves_the_code(services: Services) -> None:
    client, code = await _client_and_code(services, (ORDERS,))
    with pytest.raises(InvalidTarget):
        await _exchange(services, client, _with_resources(code, "https://elsewhere.example.com"))
    assert _audience(await _exchange(services, client, code_params(code))) == ORDERS
