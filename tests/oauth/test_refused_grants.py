"""SECURITY.md case 64: a refused token request changes no state.

A refresh refused for any reason found in the request (resource, scope, client, parameters) has
not rotated the token, so the client's corrected retry succeeds and is not taken for reuse. A
code exchange refused before the code is looked at leaves the code usable.
"""

from __future__ import annotations

import pytest

from tests.oauth.test_grant_races import CALLBACK, VERIFIER, code_params, setup
from tests.support import OFFERED, token_request
from tokensmith.core.secrets import keyed_hash
from tokensmith.errors import InvalidGrant, InvalidRequest, InvalidScope, InvalidTarget, OAuthError
from tokensmith.oauth.clients import NewClient
from tokensmith.oauth.code_exchange import exchange_code
from tokensmith.oauth.params import Params
from tokensmith.oauth.refresh_rotation import rotate_refresh_token
from tokensmith.runtime.services import Services

pytestmark = pytest.mark.anyio


def refresh_params(token: str, *extra: tuple[str, str]) -> Params:
    return Params([("grant_type", "refresh_token"), ("refresh_token", token), *extra])


REFUSED_REFRESHES: list[tuple[tuple[tuple[str, str], ...], type[OAuthError]]] = [
    ((("resource", "https://elsewhere.example.com"),), InvalidTarget),
    ((("resource", "https://api.example.com/#frag"),), InvalidTarget),
    ((("resource", "not a uri"),), InvalidTarget),
    ((("scope", "openid api admin"),), InvalidScope),
    ((("scope", 'api "quoted"'),), InvalidScope),
]


@pytest.mark.parametrize(("extra", "error"), REFUSED_REFRESHES)
async def test_a_refused_refresh_does_not_rotate(
    services: Services, extra: tuple[tuple[str, str], ...], error: type[OAuthError]
) -> None:
    deps, client, code = await setup(services)
    first = await exchange_code(deps, client, token_request(code_params(code)))
    token = first["refresh_token"]
    with pytest.raises(error):
        await rotate_refresh_token(deps, client, token_request(refresh_params(token, *extra)))
    found = await services.refresh.get(keyed_hash(services.master.pepper, token))
    assert found is not None
    assert found[0].rotated_at is None
    assert found[1].revoked_at is None
    retry = await rotate_refresh_token(deps, client, token_request(refresh_params(token)))
    assert retry["refresh_token"] != token


async def test_another_clients_refresh_changes_nothing(services: Services) -> None:
    deps, client, code = await setup(services)
    first = await exchange_code(deps, client, token_request(code_params(code)))
    other = NewClient(
        "other", grant_types=("authorization_code", "refresh_token"), redirect_uris=(CALLBACK,)
    ).validated("c2", b"y" * 32, services.clock.now(), offered=OFFERED)
    await services.clients.add(other)
    with pytest.raises(InvalidGrant):
        await rotate_refresh_token(
            deps, other, token_request(refresh_params(first["refresh_token"]))
        )
    retry = await rotate_refresh_token(
        deps, client, token_request(refresh_params(first["refresh_token"]))
    )
    assert "access_token" in retry


async def test_a_refresh_without_its_token_changes_nothing(services: Services) -> None:
    deps, client, code = await setup(services)
    first = await exchange_code(deps, client, token_request(code_params(code)))
    with pytest.raises(InvalidRequest):
        await rotate_refresh_token(
            deps, client, token_request(Params([("grant_type", "refresh_token")]))
        )
    with pytest.raises(InvalidGrant):
        await rotate_refresh_token(deps, client, token_request(refresh_params("tsrt_" + "x" * 43)))
    assert "access_token" in await rotate_refresh_token(
        deps, client, token_request(refresh_params(first["refresh_token"]))
    )


def replace_param(code: str, name: str, value: str | None) -> Params:
    pairs = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": VERIFIER,
    }
    pairs.pop(name, None)
    if value is not None:
        pairs[name] = value
    return Params(list(pairs.items()))


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("code_verifier", None, InvalidGrant),
        ("code_verifier", "short", InvalidGrant),
        ("code_verifier", "v" * 42 + "!", InvalidGrant),
        ("resource", "https://elsewhere.example.com", InvalidTarget),
        ("resource", "relative/path", InvalidTarget),
    ],
)
async def test_a_code_exchange_refused_before_the_code_keeps_it(
    services: Services, name: str, value: str | None, error: type[OAuthError]
) -> None:
    deps, client, code = await setup(services)
    with pytest.raises(error):
        await exchange_code(deps, client, token_request(replace_param(code, name, value)))
    assert "access_token" in await exchange_code(deps, client, token_request(code_params(code)))


async def test_another_clients_attempt_does_not_spend_the_code(services: Services) -> None:
    deps, client, code = await setup(services)
    other = NewClient(
        "other", grant_types=("authorization_code",), redirect_uris=(CALLBACK,)
    ).validated("c2", b"y" * 32, services.clock.now(), offered=OFFERED)
    with pytest.raises(InvalidGrant):
        await exchange_code(deps, other, token_request(code_params(code)))
    assert "access_token" in await exchange_code(deps, client, token_request(code_params(code)))


@pytest.mark.parametrize(
    ("name", "value"),
    [("redirect_uri", CALLBACK + "/"), ("code_verifier", "w" * 50)],
)
async def test_a_code_refused_against_its_request_is_spent(
    services: Services, name: str, value: str
) -> None:
    """Decided and documented in oauth/code_exchange.py: a code is single use, also when the
    exchange fails on the code's own checks (what a thief holding it would get wrong)."""
    deps, client, code = await setup(services)
    with pytest.raises(InvalidGrant):
        await exchange_code(deps, client, token_request(replace_param(code, name, value)))
    with pytest.raises(InvalidGrant):
        await exchange_code(deps, client, token_request(code_params(code)))
