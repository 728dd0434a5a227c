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
replay may arrive while the first exchange is still signing or storing its tokens, before they
exist for the replay's revocation to find. So the exchange stores everything it issues (the
refresh family, its first token, the access token's record) in one transaction that commits only
if the code is still unmarked and its user still enabled (``CodeStore.guard_issue``), checked
last and holding the code's row: a replay's mark either waits for the commit, and its revocation
then sees the tokens, or comes first, and nothing is stored. Either way no token of a replayed
code stays alive, and the exchange that lost is refused.
"""

from __future__ import annotations

from typing import Any

from tokensmith.audit.events import AuditEvent
from tokensmith.core.secrets import constant_time_equals, keyed_hash
from tokensmith.errors import InvalidDpopProof, InvalidGrant, InvalidRequest
from tokensmith.oauth import pkce
from tokensmith.oauth.clients import Client
from tokensmith.oauth.grants import AuthorizationCode
from tokensmith.oauth.issuance import GrantDeps
from tokensmith.oauth.request import ProtocolRequest
from tokensmith.oauth.resources import resolve_audience
from tokensmith.oauth.user_tokens import UserGrant, issue_for_user, revoke_issued

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
    # Checked before the code is spent; the audience found is the token's (not resolved again).
    audience = (
        resolve_audience(requested, client, deps.policy.default_audience) if requested else None
    )
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
    _check_dpop_jkt(code, request)
    refresh = refresh and "refresh_token" in client.grant_types
    if audience is None:
        # None asked for here: the resources of the authorization request.
        granted = tuple((code.resource or "").split())
        audience = resolve_audience(granted, client, deps.policy.default_audience)
    return await _issue(deps, client, request, code, audience, now, refresh=refresh)


async def _issue(
    deps: GrantDeps,
    client: Client,
    request: ProtocolRequest,
    code: AuthorizationCode,
    audience: tuple[str, ...],
    now: int,
    *,
    refresh: bool,
) -> dict[str, Any]:
    grant = UserGrant(
        user_id=code.user_id,
        scope=code.scope,
        code_hash=code.code_hash,
        grant_type="authorization_code",
        session_id=code.session_id,
        auth_time=code.auth_time,
        nonce=code.nonce,
    )
    return await issue_for_user(
        deps,
        request,
        client,
        grant,
        audience=audience,
        now=now,
        refresh=refresh,
        guard=deps.codes,
        refused=_INVALID,
    )


def _check_dpop_jkt(code: AuthorizationCode, request: ProtocolRequest) -> None:
    """RFC 9449 §10: a code requested with ``dpop_jkt`` is redeemed only with a proof by that
    key. Checked with the code's own checks (step 3): a code shown without its key is spent."""
    if code.dpop_jkt is None:
        return
    if request.dpop_jkt is None:
        raise InvalidDpopProof("this code is bound to a DPoP key: send a proof")
    if not constant_time_equals(request.dpop_jkt, code.dpop_jkt):
        raise InvalidGrant("the DPoP proof is not by the key the code is bound to")


async def _revoke_replayed(deps: GrantDeps, code_hash: bytes, client: Client, now: int) -> None:
    used = await deps.codes.get(code_hash)
    if used is None or used.client_id != client.client_id:
        return
    await deps.codes.mark_replayed(code_hash, now)
    await revoke_issued(deps, code_hash, now, "code_replayed")
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
