"""The device_code grant: the device polls /token until its user decides (RFC 8628 §3.4, §3.5).

Each poll is recorded by a conditional write that also tells whether it came sooner than the
grant's interval (of two polls at once, one is on time). Then, in order: an unknown device code,
or another client's, is ``invalid_grant``; a grant past its lifetime ``expired_token``; a poll
too soon ``slow_down``, and the interval grows by 5 s for every later poll (§3.5); a grant
waiting for its user ``authorization_pending``; a denied one ``access_denied``. An approved grant
is redeemed by a conditional write, so that of any number of concurrent polls exactly one gets
tokens; every later poll is ``invalid_grant``, and since the device code was then used twice,
every token from its redemption is revoked (the sibling of SECURITY 21 and 22: the tokens carry
the device code's hash as the code grant's carry the code's).

A routine ``authorization_pending`` leaves no audit row (``OAuthError.audited``): a device polls
every few seconds for minutes, and the grant's story is told by its issue, ``slow_down``,
expiry, denial and redemption. Pending polls are counted by a metric instead.

The tokens come from the same path as the code grant's (``oauth/user_tokens.py``): the access
token, a refresh token when this server takes them and the client is registered for them, and
an ID token for ``openid``, all for the user who approved and with their ``auth_time``. The
refresh family and the access token's record are stored in one transaction, which commits only
if the user still exists and is enabled and the grant was not replayed meanwhile
(``DeviceGrantStore.guard_issue``): a user disabled after the approval gets nothing.
"""

from __future__ import annotations

from typing import Any

from tokensmith.audit.events import AuditEvent
from tokensmith.core.secrets import fingerprint, keyed_hash
from tokensmith.errors import (
    AccessDenied,
    AuthorizationPending,
    ExpiredToken,
    InvalidGrant,
    InvalidRequest,
    SlowDown,
)
from tokensmith.oauth.clients import Client
from tokensmith.oauth.device_authorization import DEVICE_CODE_GRANT
from tokensmith.oauth.device_grants import DeviceGrant, DeviceGrantStore
from tokensmith.oauth.issuance import GrantDeps
from tokensmith.oauth.request import ProtocolRequest
from tokensmith.oauth.resources import resolve_audience
from tokensmith.oauth.user_tokens import UserGrant, issue_for_user, revoke_issued

__all__ = ["DeviceCodeGrant"]

_INVALID = "the device code is invalid or already used"
_MAX_DEVICE_CODE = 128


class DeviceCodeGrant:
    grant_type = DEVICE_CODE_GRANT
    parameters = frozenset({"device_code"})
    confidential_only = False

    def __init__(self, deps: GrantDeps, grants: DeviceGrantStore, *, refresh: bool = True) -> None:
        self._deps = deps
        self._grants = grants
        self._refresh = refresh  # the refresh_token grant is on: a refresh token can be used

    async def handle(self, request: ProtocolRequest, client: Client) -> dict[str, Any]:
        value = request.params.get("device_code")
        if value is None:
            raise InvalidRequest("device_code is required")
        if len(value) > _MAX_DEVICE_CODE:
            raise InvalidGrant(_INVALID)
        code_hash = keyed_hash(self._deps.pepper, value)
        now = self._deps.clock.now()
        poll = await self._grants.poll(code_hash, client.client_id, now)
        if poll is None:
            raise InvalidGrant(_INVALID)
        grant = poll.grant
        if not grant.live(now):
            self._audit("device.expired", client, grant, value)
            raise ExpiredToken("the device code has expired; start again")
        if poll.too_fast:
            self._audit("device.slow_down", client, grant, value, interval=grant.poll_interval)
            raise SlowDown(f"poll at most every {grant.poll_interval} seconds")
        if grant.status == "pending":
            raise AuthorizationPending("the user has not decided yet")
        if grant.status == "denied":
            raise AccessDenied("the user denied the request")
        redeemed = await self._grants.redeem(code_hash, client.client_id, now)
        if redeemed is None or redeemed.user_id is None:
            # Approved when polled yet not redeemable: another poll redeemed it in between.
            if grant.status in ("approved", "redeemed"):
                await self._revoke_replayed(client, grant, value, now)
            raise InvalidGrant(_INVALID)
        return await self._issue(request, client, redeemed, now)

    async def _revoke_replayed(
        self, client: Client, grant: DeviceGrant, code: str, now: int
    ) -> None:
        """A redeemed device code polled again: someone else holds it too. What it gave goes."""
        if not await self._grants.mark_replayed(grant.device_code_hash, client.client_id):
            return  # marked by an earlier replay, whose revocation covers it
        await revoke_issued(self._deps, grant.device_code_hash, now, "device_code_replayed")
        self._audit("device.replayed", client, grant, code)

    async def _issue(
        self, request: ProtocolRequest, client: Client, grant: DeviceGrant, now: int
    ) -> dict[str, Any]:
        deps = self._deps
        assert grant.user_id is not None
        granted = tuple((grant.resource or "").split())
        approved = UserGrant(
            user_id=grant.user_id,
            scope=grant.scope,
            code_hash=grant.device_code_hash,
            grant_type=self.grant_type,
            session_id=grant.session_id,
            auth_time=grant.auth_time,
        )
        return await issue_for_user(
            deps,
            request,
            client,
            approved,
            audience=resolve_audience(granted, client, deps.policy.default_audience),
            now=now,
            refresh=self._refresh and "refresh_token" in client.grant_types,
            guard=self._grants,
            refused=_INVALID,
        )

    def _audit(
        self, event: str, client: Client, grant: DeviceGrant, code: str, **detail: object
    ) -> None:
        self._deps.audit.record(
            AuditEvent(
                at=self._deps.clock.now(),
                event=event,
                outcome="failure",
                actor=f"client:{client.client_id}",
                client_id=client.client_id,
                subject=grant.user_id,
                fingerprint=fingerprint(code),
                detail=dict(detail),
            )
        )
