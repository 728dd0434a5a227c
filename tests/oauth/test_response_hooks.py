"""Response hooks (oauth/issuance.py: ResponseHook) add to a token response; they never rewrite
what the grant decided (docs/architecture.md: "The registered claims are the issuer's own and a
hook cannot set them").

A hook's ``context`` may add claims and name another ``token_type``; returning a context with
another subject, scope, audience, lifetime or client would set ``sub``, ``scope``, ``aud`` and
``exp`` as surely as a ``claims`` entry would. A hook's ``body`` may add members; replacing the
access token, its type or its lifetime in the answer would hand the client something else than
what was stored.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.oauth.protocol import MemoryGrant, memory_grant_deps
from tests.oauth.test_code_exchange_protocol import register_app
from tests.support import token_request
from tokensmith.core.clock import FrozenClock
from tokensmith.jose.jws import verify_jwt
from tokensmith.oauth.access_tokens import TokenContext
from tokensmith.oauth.clients import Client
from tokensmith.oauth.issuance import ResponseHook, TokenResponder
from tokensmith.oauth.params import Params
from tokensmith.oauth.request import ProtocolRequest

pytestmark = pytest.mark.anyio


class Rewrite(ResponseHook):
    def __init__(self, **changes: Any) -> None:
        self.changes = changes

    def context(self, request: ProtocolRequest, ctx: TokenContext) -> TokenContext:
        return replace(ctx, **self.changes)


class Body(ResponseHook):
    def __init__(self, **members: Any) -> None:
        self.members = members

    def body(self, request: ProtocolRequest, ctx: TokenContext, body: dict[str, Any]) -> None:
        body.update(self.members)


class Bind(ResponseHook):
    """What a DPoP hook does: a cnf claim, another token_type, a response member."""

    def __init__(self) -> None:
        self.claims: dict[str, Any] = {"cnf": {"jkt": "thumbprint"}}

    def context(self, request: ProtocolRequest, ctx: TokenContext) -> TokenContext:
        return replace(ctx, claims={**ctx.claims, **self.claims}, token_type="DPoP")

    def body(self, request: ProtocolRequest, ctx: TokenContext, body: dict[str, Any]) -> None:
        body["bound"] = True


@pytest.fixture
def grant(clock: FrozenClock) -> MemoryGrant:
    return memory_grant_deps(clock)


@pytest.fixture
async def client(grant: MemoryGrant, clock: FrozenClock) -> Client:
    return await register_app(grant, clock)


def context(client: Client) -> TokenContext:
    return TokenContext(
        client=client,
        subject="u1",
        scope=frozenset({"api"}),
        audience=("https://api.example.com",),
        lifetime=300,
        grant_type="authorization_code",
    )


def responder(grant: MemoryGrant, *hooks: ResponseHook) -> TokenResponder:
    return replace(grant.deps.responder, hooks=hooks)


async def respond(responder: TokenResponder, client: Client) -> dict[str, Any]:
    return await responder.respond(token_request(Params()), context(client))


async def test_a_hook_adds_claims_a_token_type_and_members(
    grant: MemoryGrant, client: Client
) -> None:
    body = await respond(responder(grant, Bind()), client)
    assert body["token_type"] == "DPoP" and body["bound"] is True
    claims = verify_jwt(body["access_token"], {grant.signing_key.kid: grant.signing_key})[1]
    assert claims["cnf"] == {"jkt": "thumbprint"} and claims["sub"] == "u1"


async def test_the_claims_are_checked_and_kept_as_given(client: Client) -> None:
    """Checked once, when the context is made: a dict changed afterwards changes nothing."""
    given: dict[str, Any] = {"act": {"sub": "service"}}
    ctx = replace(context(client), claims=given)
    given["sub"] = "admin"
    assert dict(ctx.claims) == {"act": {"sub": "service"}}


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": "admin"},
        {"scope": frozenset({"api", "tokensmith:admin"})},
        {"audience": ("https://other.example.com",)},
        {"lifetime": 10**9},
        {"family_id": "someone-else"},
        {"grant_type": "client_credentials"},
    ],
    ids=lambda changes: next(iter(changes)),
)
async def test_a_hook_cannot_rewrite_what_the_grant_decided(
    grant: MemoryGrant, client: Client, changes: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="hook"):
        await respond(responder(grant, Rewrite(**changes)), client)
    assert grant.audit.named("token.issued") == []  # refused before anything was issued


async def test_a_hook_cannot_rewrite_the_client(grant: MemoryGrant, client: Client) -> None:
    other = replace(client, client_id="c2", access_token_ttl=10**6)
    with pytest.raises(ValueError, match="hook"):
        await respond(responder(grant, Rewrite(client=other)), client)


async def test_a_hook_cannot_set_a_registered_claim(grant: MemoryGrant, client: Client) -> None:
    with pytest.raises(ValueError, match="sub"):
        await respond(responder(grant, Rewrite(claims={"sub": "admin"})), client)


@pytest.mark.parametrize(
    "members",
    [
        {"access_token": "forged"},
        {"token_type": "Bearer-ish"},
        {"expires_in": 10**9},
        {"scope": "tokensmith:admin"},
    ],
    ids=lambda members: next(iter(members)),
)
async def test_a_hook_may_add_response_members_but_not_replace_them(
    grant: MemoryGrant, client: Client, members: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="hook"):
        await respond(responder(grant, Body(**members)), client)
