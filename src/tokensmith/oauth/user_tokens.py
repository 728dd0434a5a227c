"""Tokens for what a user approved: the code grant's code and the device grant's approval.

Both grants end the same way (``oauth/code_exchange.py``, ``oauth/device_code.py``): the access
token, a refresh family when the grant takes one, and an ID token for ``openid``, all for the
user and with their ``auth_time``. Everything stored goes in one transaction that commits only if
the grant's own guard holds (its code not replayed, its user still enabled), checked last; a
refused commit leaves the grant spent with nothing issued (SECURITY.md cases 21, 22). A code
used twice revokes everything issued from it, by the same function for both grants.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from tokensmith.core.secrets import keyed_hash, random_token
from tokensmith.errors import InvalidGrant
from tokensmith.oauth.access_tokens import TokenContext
from tokensmith.oauth.clients import Client
from tokensmith.oauth.issuance import REFRESH_TOKEN_PREFIX, GrantDeps
from tokensmith.oauth.request import ProtocolRequest
from tokensmith.oauth.tokens import RefreshFamily, RefreshToken
from tokensmith.oauth.transactions import Transaction

__all__ = ["IssueGuard", "UserGrant", "issue_for_user", "revoke_issued"]


@dataclass(frozen=True, slots=True)
class UserGrant:
    """What a grant redeemed, as issuing needs it. ``code_hash`` is the keyed hash of the code
    (or device code) the tokens carry, so that its replay finds and revokes them."""

    user_id: str
    scope: str
    code_hash: bytes
    grant_type: str
    session_id: str | None
    auth_time: int | None
    nonce: str | None = None


class IssueGuard(Protocol):
    """The grant's store: ``CodeStore`` or ``DeviceGrantStore``."""

    async def guard_issue(self, code_hash: bytes, tx: Transaction, /) -> None: ...


async def issue_for_user(
    deps: GrantDeps,
    request: ProtocolRequest,
    client: Client,
    grant: UserGrant,
    *,
    audience: tuple[str, ...],
    now: int,
    refresh: bool,
    guard: IssueGuard,
    refused: str,
) -> dict[str, Any]:
    """The token response; ``refresh``: a refresh token is issued (the caller decided).
    ``refused``: the ``invalid_grant`` description when the guard refuses the commit."""
    tx = deps.tokens.transaction()
    family_id, refresh_value = None, None
    if refresh:
        # RFC 9449 §5: a public client's refresh tokens are bound to its proof's key.
        jkt = request.dpop_jkt if client.is_public else None
        family_id, refresh_value = await _start_family(deps, client, grant, now, tx, jkt)
    ctx = TokenContext(
        client=client,
        subject=grant.user_id,
        scope=frozenset(grant.scope.split()),
        audience=audience,
        lifetime=deps.policy.lifetime_for(client),
        family_id=family_id,
        code_hash=grant.code_hash,
        grant_type=grant.grant_type,
    )
    prepared = deps.responder.prepare(request, ctx)
    await deps.responder.stage(prepared, tx)
    # The user is checked here rather than read first: one deleted or disabled since the
    # approval refuses the commit, and the grant stays spent with nothing issued.
    await guard.guard_issue(grant.code_hash, tx)
    if not await tx.commit():
        raise InvalidGrant(refused)
    return deps.responder.answer(
        request,
        prepared,
        refresh_token=refresh_value,
        oidc=(grant.user_id, grant.auth_time, grant.nonce),
    )


async def revoke_issued(deps: GrantDeps, code_hash: bytes, now: int, reason: str) -> None:
    """Revoke every token issued from the code (or device code) hashed as ``code_hash``."""
    # Families first, then tokens: revoke_by_code also covers the access tokens those families
    # produced by refreshing, so none is left alive between the two steps.
    await deps.refresh.revoke_by_code(code_hash, now, reason)
    await deps.tokens.revoke_by_code(code_hash, now)


async def _start_family(
    deps: GrantDeps,
    client: Client,
    grant: UserGrant,
    now: int,
    tx: Transaction,
    dpop_jkt: str | None,
) -> tuple[str, str]:
    family_id = secrets.token_urlsafe(16)
    refresh_value = random_token(32, REFRESH_TOKEN_PREFIX)
    family = RefreshFamily(
        family_id,
        client.client_id,
        grant.user_id,
        grant.scope,
        now,
        session_id=grant.session_id,
        auth_time=grant.auth_time,
        code_hash=grant.code_hash,
        dpop_jkt=dpop_jkt,
    )
    first = RefreshToken(
        keyed_hash(deps.pepper, refresh_value),
        family_id,
        grant.scope,
        now,
        deps.policy.refresh_expiry(client, now, now),
    )
    await deps.refresh.create_family(family, first, tx)
    return family_id, refresh_value
