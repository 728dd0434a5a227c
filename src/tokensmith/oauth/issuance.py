"""What every grant shares: the lifetime policy and the token response, with its hooks.

``TokenResponder.respond`` is the one place a token response is assembled, and records are
stored there before any token leaves (no token is returned without its record: SECURITY.md
case 54). A grant that stores more than the record splits it in three, so the record goes in the
grant's one transaction: ``prepare`` (hooks, the token signed), ``stage`` (the record added to the
transaction), and once that committed, ``answer`` (the audit event, the ID token, the body).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from tokensmith.accounts.users import UserStore
from tokensmith.audit.events import AuditEvent, AuditSink
from tokensmith.core.clock import Clock
from tokensmith.core.sealing import MasterKey
from tokensmith.errors import ServerError
from tokensmith.oauth.access_tokens import AccessToken, AccessTokenIssuer, TokenContext
from tokensmith.oauth.clients import Client, ClientStore
from tokensmith.oauth.grants import CodeStore
from tokensmith.oauth.request import ProtocolRequest
from tokensmith.oauth.tokens import RefreshStore, TokenStore
from tokensmith.oauth.transactions import Transaction
from tokensmith.oidc.encryption import Recipient, recipient
from tokensmith.oidc.id_tokens import IdTokenIssuer

__all__ = ["GrantDeps", "Prepared", "ResponseHook", "TokenPolicy", "TokenResponder"]

REFRESH_TOKEN_PREFIX = "tsrt_"


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    default_audience: str
    access_token_ttl: int
    max_lifetime: int
    refresh_token_ttl: int
    family_max_lifetime: int = 90 * 86400
    idle_timeout: int = 30 * 86400
    refresh_grace: int = 5  # seconds a duplicate refresh gets the same successor (#20)

    def refresh_grace_for(self, client: Client) -> int:
        """The client's own duplicate window, else the server's; 0 is off."""
        return self.refresh_grace if client.refresh_grace is None else client.refresh_grace

    def lifetime_for(self, client: Client) -> int:
        return min(client.access_token_ttl or self.access_token_ttl, self.max_lifetime)

    def refresh_lifetime_for(self, client: Client) -> int:
        return client.refresh_token_ttl or self.refresh_token_ttl

    def refresh_expiry(self, client: Client, family_created_at: int, now: int) -> int:
        """When a refresh token issued now expires: its lifetime, cut short by the idle timeout
        and by the end of its family's absolute lifetime."""
        ttl = min(self.refresh_lifetime_for(client), self.idle_timeout)
        return min(now + ttl, family_created_at + self.family_max_lifetime)

    def family_ended(self, family_created_at: int, last_issued_at: int, now: int) -> bool:
        """A family past its absolute lifetime, or idle for too long, is over. Checked as well as
        each token's expiry so that shortening either setting applies to existing families."""
        return (
            now >= family_created_at + self.family_max_lifetime
            or now - last_issued_at > self.idle_timeout
        )


class ResponseHook:
    """A feature's say in every token response, without editing the grants or this module.

    ``context`` may bind or annotate the token before it is issued (``cnf`` for a DPoP proof's
    key, ``act`` for a delegation, another ``token_type``) and change nothing else of the
    context; ``body`` may add response members, not change those already there. Either rule
    broken is a ValueError. Hooks run in registration order; the base class changes nothing.
    """

    def context(self, request: ProtocolRequest, ctx: TokenContext) -> TokenContext:
        return ctx

    def body(self, request: ProtocolRequest, ctx: TokenContext, body: dict[str, Any]) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Prepared:
    """An access token signed for a context the hooks have seen, not yet stored nor answered."""

    ctx: TokenContext
    token: AccessToken


@dataclass(frozen=True, slots=True)
class TokenResponder:
    """Issues the access token (and ID token), stores what must be stored, builds the body."""

    access: AccessTokenIssuer
    id_tokens: IdTokenIssuer
    tokens: TokenStore
    audit: AuditSink
    clock: Clock
    hooks: tuple[ResponseHook, ...] = ()

    async def respond(
        self,
        request: ProtocolRequest,
        ctx: TokenContext,
        *,
        refresh_token: str | None = None,
        oidc: tuple[str, int | None, str | None] | None = None,
    ) -> dict[str, Any]:
        """``oidc``: the ID token's subject, auth_time and nonce, if the scope asks for one."""
        prepared = self.prepare(request, ctx)
        if prepared.token.record is not None:
            await self.tokens.add(prepared.token.record)
        return self.answer(request, prepared, refresh_token=refresh_token, oidc=oidc)

    def prepare(self, request: ProtocolRequest, ctx: TokenContext) -> Prepared:
        for hook in self.hooks:
            ctx = _only_additions(ctx, hook.context(request, ctx))
        return Prepared(ctx, self.access.issue(ctx))

    async def stage(self, prepared: Prepared, tx: Transaction) -> None:
        """Add the token's record, if it has one, to the grant's transaction."""
        if prepared.token.record is not None:
            await self.tokens.add(prepared.token.record, tx)

    def answer(
        self,
        request: ProtocolRequest,
        prepared: Prepared,
        *,
        refresh_token: str | None = None,
        oidc: tuple[str, int | None, str | None] | None = None,
    ) -> dict[str, Any]:
        """The body, once whatever the token needs stored is stored."""
        ctx, token = prepared.ctx, prepared.token
        body: dict[str, Any] = {
            "access_token": token.value,
            "token_type": ctx.token_type,
            "expires_in": token.expires_in,
        }
        if token.scope:
            body["scope"] = token.scope
        self.audit.record(
            AuditEvent(
                at=self.clock.now(),
                event="token.issued",
                outcome="success",
                actor=f"client:{ctx.client.client_id}",
                client_id=ctx.client.client_id,
                subject=ctx.subject,
                fingerprint=token.jti,
                detail={
                    "grant_type": ctx.grant_type,
                    "scope": token.scope,
                    "audience": " ".join(ctx.audience),
                    "refresh_token": refresh_token is not None,
                },
            )
        )
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        if oidc is not None and "openid" in ctx.scope:
            subject, auth_time, nonce = oidc
            body["id_token"] = self.id_tokens.issue(
                client_id=ctx.client.client_id,
                subject=subject,
                auth_time=auth_time,
                nonce=nonce,
                access_token=token.value,
                recipient=id_token_recipient(ctx.client),
            )
        for hook in self.hooks:
            before = dict(body)
            hook.body(request, ctx, body)
            if any(body.get(name, _ABSENT) != value for name, value in before.items()):
                raise ValueError("a response hook may add response members, not change them")
        return body


_ABSENT = object()


def id_token_recipient(client: Client) -> Recipient | None:
    """Whom the client's ID tokens are encrypted to; fails closed, never sends them readable."""
    try:
        return recipient(
            client.jwks,
            client.id_token_encrypted_response_alg,
            client.id_token_encrypted_response_enc,
        )
    except ValueError:
        # Registration checked the key; a stored client without one is refused, not served.
        raise ServerError("the client's ID token encryption key is unusable") from None


def _only_additions(before: TokenContext, after: TokenContext) -> TokenContext:
    """A hook's context: other claims and token_type, and nothing else the grant decided (who
    the token is for, its scope, audience, lifetime, client): those set the registered claims."""
    if replace(after, claims=before.claims, token_type=before.token_type) != before:
        raise ValueError("a response hook may set claims and token_type only")
    return after


@dataclass(frozen=True, slots=True)
class GrantDeps:
    """What the built-in code and refresh grants share; a new grant takes its own."""

    clients: ClientStore
    tokens: TokenStore
    refresh: RefreshStore
    codes: CodeStore
    users: UserStore
    responder: TokenResponder
    policy: TokenPolicy
    pepper: bytes
    master: MasterKey
    clock: Clock
    audit: AuditSink
