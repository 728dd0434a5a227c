"""The authorization_code grant (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3, RFC 7636 §4.6).

The order of the checks decides what a refused exchange costs (SECURITY.md cases 21, 22, 64):

1. Checks that need no code run before the code is touched: the parameters are present, the
   ``code_verifier`` is well formed (RFC 7636 §4.1), and any ``resource`` is one this client may
   ask for (RFC 8707). Such a refusal leaves the code usable.
2. The code is consumed by its own client only: another client's attempt never spends it.
3. Then the code's own checks: expiry, ``redirect_uri``, the PKCE verifier, the user. A code is
   single use (RFC 6749 §4.1.2), so a refusal here has spent it: a wrong verifier is what a thief
   holding the code would send, and burning the code fails closed. The client starts a new
   authorization request.

A code presented again revokes every token issued from it (RFC 6749 §4.1.2, RFC 9700 §4.5). A
replay may arrive while the first exchange is still storing its tokens, after the replay's own
revocation ran; so the first exchange looks for the replay mark once its tokens are stored, and
revokes them itself if it finds one. Mark-then-revoke on one side and store-then-check on the
other means one of the two always sees the other's write.
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
from tokensmith.oauth.grants import AuthorizationCode
from tokensmith.oauth.issuance import REFRESH_TOKEN_PREFIX, GrantDeps
from tokensmith.oauth.request import ProtocolRequest
from tokensmith.oauth.resources import resolve_audience
from tokensmith.oauth.tokens import RefreshFamily, RefreshToken

__all__ = ["AuthorizationCodeGrant", "exchange_code"]

_INVALID = "the authorization code is invalid, expired or already used"


class AuthorizationCodeGrant:
    grant_type = "authorization_code"
    parameters = frozenset({"code", "code_verifier", "redirect_uri", "resource"})
    confidential_only = False

    def __init__(self, deps: GrantDeps, *, refresh: bool = True) -> None:
        self._deps = deps
        self._refresh = refresh  # the refresh_token grant is on: a refresh token can be used

    async def handle(self, request: ProtocolRequest, client: Client) -> dict[str, Any]:
        return await exchange_code(self._deps, client, request, refresh=self._refresh)


async def exchange_code(
    deps: GrantDeps, client: Client, request: ProtocolRequest, *, refresh: bool = True
) -> dict[str, Any]:
    """``refresh``: whether this server takes refresh tokens at all (TOKENSMITH_GRANT_TYPES);
    one is issued only then, and only to a client registered for the refresh grant."""
    params = request.params
    value = params.get("code")
    if value is None:
        raise InvalidRequest("code is required")
    verifier = params.get("code_verifier")
    pkce.check_verifier(verifier)
    requested = params.all("resource")
    if requested:
        resolve_audience(requested, client, deps.policy.default_audience)
    code_hash = keyed_hash(deps.pepper, value)
    now = deps.clock.now()
    code = await deps.codes.consume(code_hash, client.client_id, now)
    if code is None:
        await _revoke_replayed(deps, code_hash, client, now)
        raise InvalidGrant(_INVALID)
    if code.expires_at <= now:
        raise InvalidGrant(_INVALID)
    if params.get("redirect_uri") != code.redirect_uri:
        raise InvalidGrant("redirect_uri does not match the authorization request")
    pkce.verify(verifier, code.code_challenge)
    refresh = refresh and "refresh_token" in client.grant_types
    body = await _issue(deps, client, request, code, requested, now, refresh=refresh)
    await _unless_replayed(deps, client, code, now)
    return body


async def _issue(
    deps: GrantDeps,
    client: Client,
    request: ProtocolRequest,
    code: AuthorizationCode,
    requested: tuple[str, ...],
    now: int,
    *,
    refresh: bool,
) -> dict[str, Any]:
    user = await deps.users.get(code.user_id)
    if user is None or user.disabled:
        raise InvalidGrant(_INVALID)
    scope = frozenset(code.scope.split())
    requested = requested or tuple((code.resource or "").split())
    audience = resolve_audience(requested, client, deps.policy.default_audience)
    family_id, refresh_value = None, None
    if refresh:
        family_id, refresh_value = await _start_family(deps, client, code, now)
    ctx = TokenContext(
        client=client,
        subject=user.user_id,
        scope=scope,
        audience=audience,
        lifetime=deps.policy.lifetime_for(client),
        family_id=family_id,
        code_hash=code.code_hash,
        grant_type="authorization_code",
    )
    return await deps.responder.respond(
        request, ctx, refresh_token=refresh_value, oidc=(user, code.auth_time, code.nonce)
    )


async def _start_family(
    deps: GrantDeps, client: Client, code: AuthorizationCode, now: int
) -> tuple[str, str]:
    family_id = secrets.token_urlsafe(16)
    refresh_value = random_token(32, REFRESH_TOKEN_PREFIX)
    family = RefreshFamily(
        family_id,
        client.client_id,
        code.user_id,
        code.scope,
        now,
        session_id=code.session_id,
        auth_time=code.auth_time,
        code_hash=code.code_hash,
    )
    first = RefreshToken(
        keyed_hash(deps.pepper, refresh_value),
        family_id,
        code.scope,
        now,
        deps.policy.refresh_expiry(client, now, now),
    )
    await deps.refresh.create_family(family, first)
    return family_id, refresh_value


async def _unless_replayed(
    deps: GrantDeps, client: Client, code: AuthorizationCode, now: int
) -> None:
    """SECURITY.md case 22: a replay that came while we stored our tokens may have revoked too
    early to see them; its mark is set before its revocation, so we see the mark. Security wins
    over the answer: what we issued is revoked and this exchange is refused too."""
    current = await deps.codes.get(code.code_hash)
    if current is not None and current.replayed_at is None:
        return
    await _revoke_from_code(deps, code.code_hash, deps.clock.now())
    raise InvalidGrant(_INVALID)


async def _revoke_from_code(deps: GrantDeps, code_hash: bytes, now: int) -> None:
    # Families first, then tokens: revoke_by_code also covers the access tokens those families
    # produced by refreshing, so none is left alive between the two steps.
    await deps.refresh.revoke_by_code(code_hash, now, "code_replayed")
    await deps.tokens.revoke_by_code(code_hash, now)


async def _revoke_replayed(deps: GrantDeps, code_hash: bytes, client: Client, now: int) -> None:
    used = await deps.codes.get(code_hash)
    if used is None or used.client_id != client.client_id:
        return
    await deps.codes.mark_replayed(code_hash, now)
    await _revoke_from_code(deps, code_hash, now)
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
