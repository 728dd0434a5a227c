"""The refresh_token grant with rotation and reuse detection (RFC 6749 §6, RFC 9700 §4.14.2).

Every use exchanges the refresh token for a successor in the same family. Presenting a token that
was already exchanged is reuse: the whole family and every access token it produced are revoked.
Scope can only shrink (§6); a password changed since the family began ends it, and so do the
family's absolute lifetime and its idle timeout (``TokenPolicy.family_ended``).

Concurrent refreshes are not theft (two tabs, a CLI run twice, two nodes behind a balancer): a
duplicate presentation of a just-rotated token gets the *same* successor, sealed beside the
rotation, so every concurrent caller ends up on one chain. Only within the grace window after the
rotation (``REFRESH_GRACE``, per client ``refresh_grace``), from the same client authenticated
the same way (and a public client's family is bound to its DPoP key anyway), while the successor
is unused, and at most ``MAX_DUPLICATES`` times; anything else is reuse, as before.

A grant's writes are one transaction: the claim, the successor and the access token's record
commit together, or nothing changed and the client may simply retry.
"""

from __future__ import annotations

from typing import Any

from tokensmith.audit.events import AuditEvent
from tokensmith.core.sealing import SealError
from tokensmith.core.secrets import constant_time_equals, fingerprint, keyed_hash, random_token
from tokensmith.errors import InvalidDpopProof, InvalidGrant, InvalidRequest
from tokensmith.oauth.access_tokens import TokenContext
from tokensmith.oauth.client_auth import credential_mark
from tokensmith.oauth.clients import Client
from tokensmith.oauth.issuance import REFRESH_TOKEN_PREFIX, GrantDeps, Prepared
from tokensmith.oauth.request import ProtocolRequest
from tokensmith.oauth.resources import resolve_audience
from tokensmith.oauth.scopes import narrow_scope
from tokensmith.oauth.tokens import RefreshFamily, RefreshToken
from tokensmith.oauth.transactions import Transaction

__all__ = ["MAX_DUPLICATES", "RefreshTokenGrant", "rotate_refresh_token"]

_INVALID = "the refresh token is invalid, expired or revoked"
_REUSED = "the refresh token was already used; the grant has been revoked"
# Duplicates of one rotation answered with its successor; the next is treated as reuse. Enough
# for a page that fans out parallel requests, too few to hide a replaying thief.
MAX_DUPLICATES = 5
# With the window off, a duplicate this recent is described as a race, not a theft.
_JUST_ROTATED = 60


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
    if found is None:
        raise InvalidGrant(_INVALID)
    token, family, user = found
    now = deps.clock.now()
    if family.client_id != client.client_id:
        # A used token in another client's hands has leaked: reuse (case 30). A live one is
        # refused and left as it was, so a stranger cannot end a grant it never held.
        if token.rotated_at is not None and family.revoked_at is None:
            await _revoke_family(deps, family.family_id, now, "reuse_detected")
            _reuse_detected(deps, client, family, value, now)
        raise InvalidGrant(_INVALID)
    _check_binding(family, request)
    # Every check of the request comes before the rotation (SECURITY.md case 64): a refusal
    # that rotated first would make the client's corrected retry look like reuse and end the
    # family.
    scope = narrow_scope(params.get("scope"), frozenset(token.scope.split()))
    audience = resolve_audience(params.all("resource"), client, deps.policy.default_audience)
    if family.revoked_at is not None or token.expires_at <= now:
        raise InvalidGrant(_INVALID)
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
    mark = credential_mark(request.credentials, deps.pepper)
    if token.rotated_at is None:
        tx = deps.tokens.transaction()
        await deps.responder.stage(prepared, tx)
        outcome = await _rotate(deps, client, token, family, value, now, tx, mark)
        if isinstance(outcome, str):
            return _answer(deps, request, prepared, family, outcome)
        token = outcome  # rotated by a concurrent request meanwhile: a duplicate after all
    successor_value = await _duplicate(deps, client, token, family, value, now, mark, prepared)
    return _answer(deps, request, prepared, family, successor_value)


def _answer(
    deps: GrantDeps,
    request: ProtocolRequest,
    prepared: Prepared,
    family: RefreshFamily,
    refresh_token: str,
) -> dict[str, Any]:
    return deps.responder.answer(
        request,
        prepared,
        refresh_token=refresh_token,
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
    mark: bytes,
) -> str | RefreshToken:
    """Exchange the presented token for its successor, storing ``tx`` with it: the successor's
    value; or, if a concurrent request rotated it first, the token as that request left it."""
    successor_value = random_token(32, REFRESH_TOKEN_PREFIX)
    successor = RefreshToken(
        keyed_hash(deps.pepper, successor_value),
        family.family_id,
        token.scope,
        now,
        deps.policy.refresh_expiry(client, family.created_at, now),
    )
    grace = deps.policy.refresh_grace_for(client)
    sealed = _seal(deps, token.token_hash, successor_value) if grace else None
    result = await deps.refresh.rotate(
        token.token_hash, successor, now, sealed, family=family, tx=tx, rotated_by=mark
    )
    if result.outcome == "rotated":
        return successor_value
    if result.outcome == "reused" and result.token is not None:
        return result.token
    raise InvalidGrant(_INVALID)


async def _duplicate(
    deps: GrantDeps,
    client: Client,
    used: RefreshToken,
    family: RefreshFamily,
    value: str,
    now: int,
    mark: bytes,
    prepared: Prepared,
) -> str:
    """The successor already issued for ``used``, if this presentation is a duplicate within
    every bound; else reuse, and the family ends.

    The count, the successor's state and the family's are checked again as the access token's
    record is stored, in one transaction: of many duplicates at once, no more than
    ``MAX_DUPLICATES`` are answered, and none after the successor was used or the family ended.
    """
    grace = deps.policy.refresh_grace_for(client)
    rotated_at = used.rotated_at if used.rotated_at is not None else now
    within = (
        grace > 0
        and now - rotated_at <= grace
        and used.successor_sealed is not None
        and used.rotated_by is not None
        and constant_time_equals(used.rotated_by, mark)
    )
    successor_value = _unseal(deps, used) if within else None
    if successor_value is not None:
        tx = deps.tokens.transaction()
        await deps.responder.stage(prepared, tx)
        await deps.refresh.guard_duplicate(used, now - grace, MAX_DUPLICATES, tx)
        if await tx.commit():
            _duplicate_answered(deps, client, family, value, now, used.duplicates + 1)
            return successor_value
    await _revoke_family(deps, family.family_id, now, "reuse_detected")
    _reuse_detected(deps, client, family, value, now)
    if grace == 0 and 0 <= now - rotated_at <= _JUST_ROTATED:
        raise InvalidGrant(
            f"the refresh token was rotated {now - rotated_at} s ago by another request (a"
            " concurrent refresh?) and this client has no refresh grace window; the grant has"
            " been revoked"
        )
    raise InvalidGrant(_REUSED)


def _unseal(deps: GrantDeps, used: RefreshToken) -> str | None:
    if used.successor_sealed is None or used.successor_hash is None:
        return None
    try:
        value = deps.master.unseal(used.successor_sealed, _context(used.token_hash)).decode()
    except SealError:
        return None
    # The sealed value is the successor the row names, or nothing is handed out.
    if not constant_time_equals(keyed_hash(deps.pepper, value), used.successor_hash):
        return None
    return value


def _seal(deps: GrantDeps, token_hash: bytes, successor_value: str) -> bytes:
    return deps.master.seal(successor_value.encode(), _context(token_hash))


def _context(token_hash: bytes) -> str:
    return "refresh_successor:" + token_hash.hex()


def _reuse_detected(
    deps: GrantDeps, client: Client, family: RefreshFamily, value: str, now: int
) -> None:
    """RFC 9700 §4.14.2: a used refresh token came back. The family is gone; say so loudly.
    The actor is the client that presented it; ``client_id`` the one it was issued to."""
    deps.audit.record(
        AuditEvent(
            at=now,
            event="token.reuse_detected",
            outcome="failure",
            actor=f"client:{client.client_id}",
            client_id=family.client_id,
            subject=family.subject,
            fingerprint=fingerprint(value),
            detail={"family_id": family.family_id, "action": "family revoked"},
        )
    )


def _duplicate_answered(
    deps: GrantDeps, client: Client, family: RefreshFamily, value: str, now: int, count: int
) -> None:
    deps.audit.record(
        AuditEvent(
            at=now,
            event="token.refresh_duplicate",
            outcome="success",
            actor=f"client:{client.client_id}",
            client_id=client.client_id,
            subject=family.subject,
            fingerprint=fingerprint(value),
            detail={"family_id": family.family_id, "duplicate": count},
        )
    )


async def _revoke_family(deps: GrantDeps, family_id: str, now: int, reason: str) -> None:
    await deps.refresh.revoke_family(family_id, now, reason)
    await deps.tokens.revoke_by_family(family_id, now)
