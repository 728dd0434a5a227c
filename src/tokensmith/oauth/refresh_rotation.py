"""The refresh_token grant with rotation and reuse detection (RFC 6749 §6, RFC 9700 §4.14.2).

Every use exchanges the refresh token for a successor in the same family. Presenting a token that
was already exchanged is reuse: the whole family and every access token it produced are revoked.
Scope can only shrink (§6); a password changed since the family began ends it.
"""

from __future__ import annotations

from typing import Any

from tokensmith.core.secrets import keyed_hash, random_token
from tokensmith.errors import InvalidGrant, InvalidRequest
from tokensmith.oauth.access_tokens import TokenContext
from tokensmith.oauth.clients import Client
from tokensmith.oauth.issuance import REFRESH_TOKEN_PREFIX, GrantDeps, narrow_scope, respond
from tokensmith.oauth.params import Params
from tokensmith.oauth.resources import resolve_audience
from tokensmith.oauth.tokens import RefreshToken

__all__ = ["rotate_refresh_token"]

_INVALID = "the refresh token is invalid, expired or revoked"


async def rotate_refresh_token(deps: GrantDeps, client: Client, params: Params) -> dict[str, Any]:
    value = params.get("refresh_token")
    if value is None:
        raise InvalidRequest("refresh_token is required")
    if not value.startswith(REFRESH_TOKEN_PREFIX):
        raise InvalidGrant(_INVALID)
    token_hash = keyed_hash(deps.pepper, value)
    found = await deps.refresh.get(token_hash)
    if found is None or found[1].client_id != client.client_id:
        raise InvalidGrant(_INVALID)
    token, family = found
    scope = narrow_scope(params.get("scope"), frozenset(token.scope.split()))
    now = deps.clock.now()
    user = await deps.users.get(family.subject)
    if user is None or user.disabled or user.password_changed_at > family.created_at:
        await _revoke_family(deps, family.family_id, now, "credentials_changed")
        raise InvalidGrant(_INVALID)

    successor_value = random_token(32, REFRESH_TOKEN_PREFIX)
    successor = RefreshToken(
        keyed_hash(deps.pepper, successor_value),
        family.family_id,
        token.scope,
        now,
        now + deps.policy.refresh_lifetime_for(client),
    )
    result = await deps.refresh.rotate(token_hash, successor, now)
    if result.outcome == "reused":
        await _revoke_family(deps, family.family_id, now, "reuse_detected")
        raise InvalidGrant("the refresh token was already used; the grant has been revoked")
    if result.outcome != "rotated":
        raise InvalidGrant(_INVALID)
    ctx = TokenContext(
        client=client,
        subject=family.subject,
        scope=scope,
        audience=resolve_audience(params.all("resource"), client, deps.policy.default_audience),
        lifetime=deps.policy.lifetime_for(client),
        family_id=family.family_id,
    )
    return await respond(
        deps, ctx, refresh_token=successor_value, oidc=(user, family.auth_time, None)
    )


async def _revoke_family(deps: GrantDeps, family_id: str, now: int, reason: str) -> None:
    await deps.refresh.revoke_family(family_id, now, reason)
    await deps.tokens.revoke_by_family(family_id, now)
