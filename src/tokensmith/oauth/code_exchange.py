"""The authorization_code grant (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3, RFC 7636 §4.6).

A code is consumed before anything else is checked, so it is single use even when the exchange
fails. A code presented again revokes every token issued from it (RFC 6749 §4.1.2, RFC 9700 §4.5).
"""

from __future__ import annotations

import secrets
from typing import Any

from tokensmith.audit.events import AuditEvent
from tokensmith.core.secrets import keyed_hash, random_token
from tokensmith.errors import InvalidGrant, InvalidRequest
from tokensmith.oauth import pkce
from tokensmith.oauth.access_tokens import TokenContext
from tokensmith.oauth.clients import Client
from tokensmith.oauth.issuance import REFRESH_TOKEN_PREFIX, GrantDeps, respond
from tokensmith.oauth.params import Params
from tokensmith.oauth.resources import resolve_audience
from tokensmith.oauth.tokens import RefreshFamily, RefreshToken

__all__ = ["exchange_code"]

_INVALID = "the authorization code is invalid, expired or already used"


async def exchange_code(deps: GrantDeps, client: Client, params: Params) -> dict[str, Any]:
    value = params.get("code")
    if value is None:
        raise InvalidRequest("code is required")
    code_hash = keyed_hash(deps.pepper, value)
    now = deps.clock.now()
    code = await deps.codes.consume(code_hash, now)
    if code is None:
        await _revoke_replayed(deps, code_hash, client, now)
        raise InvalidGrant(_INVALID)
    if code.client_id != client.client_id or code.expires_at <= now:
        raise InvalidGrant(_INVALID)
    if params.get("redirect_uri") != code.redirect_uri:
        raise InvalidGrant("redirect_uri does not match the authorization request")
    pkce.verify(params.get("code_verifier"), code.code_challenge)
    user = await deps.users.get(code.user_id)
    if user is None or user.disabled:
        raise InvalidGrant(_INVALID)

    scope = frozenset(code.scope.split())
    requested = params.all("resource") or tuple((code.resource or "").split())
    audience = resolve_audience(requested, client, deps.policy.default_audience)
    family_id, refresh_value = None, None
    if "refresh_token" in client.grant_types:
        family_id = secrets.token_urlsafe(16)
        refresh_value = random_token(32, REFRESH_TOKEN_PREFIX)
        family = RefreshFamily(
            family_id,
            client.client_id,
            user.user_id,
            code.scope,
            now,
            session_id=code.session_id,
            auth_time=code.auth_time,
            code_hash=code_hash,
        )
        first = RefreshToken(
            keyed_hash(deps.pepper, refresh_value),
            family_id,
            code.scope,
            now,
            now + deps.policy.refresh_lifetime_for(client),
        )
        await deps.refresh.create_family(family, first)
    ctx = TokenContext(
        client=client,
        subject=user.user_id,
        scope=scope,
        audience=audience,
        lifetime=deps.policy.lifetime_for(client),
        family_id=family_id,
        code_hash=code_hash,
        grant_type="authorization_code",
    )
    return await respond(
        deps, ctx, refresh_token=refresh_value, oidc=(user, code.auth_time, code.nonce)
    )


async def _revoke_replayed(deps: GrantDeps, code_hash: bytes, client: Client, now: int) -> None:
    used = await deps.codes.get(code_hash)
    if used is None or used.client_id != client.client_id:
        return
    await deps.codes.mark_replayed(code_hash, now)
    await deps.tokens.revoke_by_code(code_hash, now)
    await deps.refresh.revoke_by_code(code_hash, now, "code_replayed")
    deps.audit.record(
        AuditEvent(
            at=now,
            event="code.replayed",
            outcome="failure",
            actor=f"client:{client.client_id}",
            client_id=client.client_id,
            subject=used.user_id,
            detail={"action": "tokens from the code revoked"},
        )
    )
