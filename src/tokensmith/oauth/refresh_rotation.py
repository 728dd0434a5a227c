"""The refresh_token grant with rotation and reuse detection (RFC 6749 §6, RFC 9700 §4.14.2).

Every use exchanges the refresh token for a successor in the same family. Presenting a token that
was already exchanged is reuse: the whole family and every access token it produced are revoked.
Scope can only shrink (§6); a password changed since the family began ends it, and so do the
family's absolute lifetime and its idle timeout (``TokenPolicy.family_ended``). A client may have
a short grace window in which a retry of a lost response gets the same successor back.
"""

from __future__ import annotations

from typing import Any

from tokensmith.audit.events import AuditEvent
from tokensmith.core.sealing import SealError
from tokensmith.core.secrets import constant_time_equals, fingerprint, keyed_hash, random_token
from tokensmith.errors import InvalidDpopProof, InvalidGrant, InvalidRequest
from tokensmith.oauth.access_tokens import TokenContext
from tokensmith.oauth.clients import Client
from tokensmith.oauth.issuance import REFRESH_TOKEN_PREFIX, GrantDeps
from tokensmith.oauth.request import ProtocolRequest
from tokensmith.oauth.resources import resolve_audience
from tokensmith.oauth.scopes import narrow_scope
from tokensmith.oauth.tokens import RefreshFamily, RefreshToken
from tokensmith.oauth.transactions import Transaction

__all__ = ["RefreshTokenGrant", "rotate_refresh_token"]

_INVALID = "the refresh token is invalid, expired or revoked"


class RefreshTokenGrant:
    grant_type = "refresh_token"
    parameters = frozenset({"refresh_token", "scope", "resource"})
    confidential_only = False

    def __init__(self, deps: GrantDeps) -> None:
        self._deps = deps

    async def handle(self, request: ProtocolRequest, client: Client) -> dict[str, Any]:
        return await rotate_refresh_token(self._deps, client, request)


async def rotate_refresh_token(
    deps: GrantDeps, client: Client, request: ProtocolRequest
) -> dict[str, Any]:
    params = request.params
    value = params.get("refresh_token")
    if value is None:
        raise InvalidRequest("refresh_token is required")
    if not value.startswith(REFRESH_TOKEN_PREFIX):
        raise InvalidGrant(_INVALID)
    token_hash = keyed_hash(deps.pepper, value)
    found = await deps.refresh.get_with_subject(token_hash)
    if found is None or found[1].client_id != client.client_id:
        raise InvalidGrant(_INVALID)
    token, family, user = found
    _check_binding(family, request)
    # Every check of the request comes before the rotation (SECURITY.md case 64): a refusal
    # that rotated first would make the client's corrected retry look like reuse and end the
    # family.
    scope = narrow_scope(params.get("scope"), frozenset(token.scope.split()))
    audience = resolve_audience(params.all("resource"), client, deps.policy.default_audience)
    now = deps.clock.now()
    if token.rotated_at is None and deps.policy.family_ended(
        family.created_at, token.issued_at, now
    ):
        raise InvalidGrant(_INVALID)
    if user is None or user.disabled or user.password_changed_at > family.created_at:
        await _revoke_family(deps, family.family_id, now, "credentials_changed")
        raise InvalidGrant(_INVALID)

    ctx = TokenContext(
        client=client,
        subject=family.subject,
        scope=scope,
        audience=audience,
        lifetime=deps.policy.lifetime_for(client),
        family_id=family.family_id,
        grant_type="refresh_token",
    )
    # Signed before the rotation, so that its record is stored in the rotation's transaction.
    prepared = deps.responder.prepare(request, ctx)
    tx = deps.tokens.transaction()
    await deps.responder.stage(prepared, tx)
    successor_value, successor_hash = await _rotate(deps, client, token, family, value, now, tx)
    # A concurrent reuse may have revoked the family after our claim, but before its revocation
    # of the family's access tokens could see ours: checked after the commit, so one side
    # always revokes it.
    current = await deps.refresh.get(successor_hash)
    if current is None or current[1].revoked_at is not None:
        await deps.tokens.revoke_by_family(family.family_id, deps.clock.now())
        _reuse_detected(deps, client, family.subject, family.family_id, value, now)
        raise InvalidGrant("the refresh token was already used; the grant has been revoked")
    return deps.responder.answer(
        request,
        prepared,
        refresh_token=successor_value,
        oidc=(family.subject, family.auth_time, None),
    )


def _check_binding(family: RefreshFamily, request: ProtocolRequest) -> None:
    """RFC 9449 §5: a public client's family is bound to the key of its first proof; each
    refresh must prove that key. Checked before anything rotates, so a refusal changes nothing."""
    if family.dpop_jkt is None:
        return
    if request.dpop_jkt is None:
        raise InvalidDpopProof("this refresh token is bound to a DPoP key: send a proof")
    if not constant_time_equals(request.dpop_jkt, family.dpop_jkt):
        raise InvalidGrant("the refresh token is bound to another DPoP key")


async def _rotate(
    deps: GrantDeps,
    client: Client,
    token: RefreshToken,
    family: RefreshFamily,
    value: str,
    now: int,
    tx: Transaction,
) -> tuple[str, bytes]:
    """Exchange the presented token for its successor, storing ``tx`` with it; a reuse ends the
    family, and a retry inside the grace window stores ``tx`` on its own. The successor's value
    and keyed hash: the hash is known here, so the caller's check after the commit does not
    compute it again."""
    token_hash = token.token_hash
    successor_value = random_token(32, REFRESH_TOKEN_PREFIX)
    successor = RefreshToken(
        keyed_hash(deps.pepper, successor_value),
        family.family_id,
        token.scope,
        now,
        deps.policy.refresh_expiry(client, family.created_at, now),
    )
    sealed = _seal(deps, token_hash, successor_value) if client.refresh_grace else None
    result = await deps.refresh.rotate(token_hash, successor, now, sealed, family=family, tx=tx)
    if result.outcome == "rotated":
        return successor_value, successor.token_hash
    if result.outcome != "reused":
        raise InvalidGrant(_INVALID)
    retry = await _retry_within_grace(deps, client, result.token, now)
    if retry is None:
        await _revoke_family(deps, family.family_id, now, "reuse_detected")
        _reuse_detected(deps, client, family.subject, family.family_id, value, now)
        raise InvalidGrant("the refresh token was already used; the grant has been revoked")
    if not await tx.commit():
        raise InvalidGrant(_INVALID)
    return retry


async def _retry_within_grace(
    deps: GrantDeps, client: Client, used: RefreshToken | None, now: int
) -> tuple[str, bytes] | None:
    """The successor already issued for ``used`` (value and hash), if the client may retry and
    nobody moved on.

    A retry inside the client's grace window gets the same successor back, so there is never a
    second live chain; once that successor has itself been used, the window is closed.
    """
    if used is None or used.rotated_at is None or used.successor_sealed is None:
        return None
    if used.successor_hash is None or now - used.rotated_at > client.refresh_grace:
        return None
    successor = await deps.refresh.get(used.successor_hash)
    if successor is None or successor[0].rotated_at is not None:
        return None
    try:
        value = deps.master.unseal(used.successor_sealed, _context(used.token_hash)).decode()
    except SealError:
        return None
    return value, keyed_hash(deps.pepper, value)  # the rare path: what the client will present


def _seal(deps: GrantDeps, token_hash: bytes, successor_value: str) -> bytes:
    return deps.master.seal(successor_value.encode(), _context(token_hash))


def _context(token_hash: bytes) -> str:
    return "refresh_successor:" + token_hash.hex()


def _reuse_detected(
    deps: GrantDeps, client: Client, subject: str, family_id: str, value: str, now: int
) -> None:
    """RFC 9700 §4.14.2: a used refresh token came back. The family is gone; say so loudly."""
    deps.audit.record(
        AuditEvent(
            at=now,
            event="token.reuse_detected",
            outcome="failure",
            actor=f"client:{client.client_id}",
            client_id=client.client_id,
            subject=subject,
            fingerprint=fingerprint(value),
            detail={"family_id": family_id, "action": "family revoked"},
        )
    )


async def _revoke_family(deps: GrantDeps, family_id: str, now: int, reason: str) -> None:
    await deps.refresh.revoke_family(family_id, now, reason)
    await deps.tokens.revoke_by_family(family_id, now)
