"""``POST /api-keys/verify``, for gateways and APIs: is this API key good, and whose is it?

The key comes in the ``X-API-Key`` header, never in a URL or a form. The caller may stay
anonymous, or authenticate as an OAuth client through the client pipeline (lockouts included,
as at /token). A confidential client with the ``may_vouch_client_ip`` permission (a gateway,
say) may name the address its own caller came from in ``client_ip``; anyone else is judged by
their own address, and a ``client_ip`` from a client without the permission is refused (403
``unauthorized_client``). Key refusals are ``ApiKey`` challenges (not OAuth errors): the key is
the credential being judged, not the caller's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from tokensmith.apikeys.verifier import ApiKeyIdentity, ApiKeyRefused, ApiKeyVerifier
from tokensmith.audit.events import AuditEvent
from tokensmith.core.addresses import parse_address
from tokensmith.core.challenges import render_challenge
from tokensmith.core.clock import Clock
from tokensmith.core.secrets import fingerprint
from tokensmith.errors import InvalidClient, InvalidRequest, TooManyRequests, UnauthorizedClient
from tokensmith.oauth.clients import Client
from tokensmith.oauth.pipeline import Answer
from tokensmith.oauth.request import ProtocolRequest

__all__ = ["KEY_HEADER", "KeyGate", "KeyVerification", "MayNotVouch", "key_refusal"]

KEY_HEADER = "x-api-key"


class KeyGate(Protocol):
    async def within_address_rate(self, address: str | None) -> None: ...

    async def judge(self, *, failed: bool, **names: str | None) -> None: ...

    async def held(self, name: str) -> int | None: ...


class Observer(Protocol):
    def observe(self, event: AuditEvent) -> None: ...


class AuditRecorder(Protocol):
    def record(self, event: AuditEvent) -> None: ...


class MayNotVouch(UnauthorizedClient):
    """An authenticated client without the permission to name its callers' addresses: sent as
    unauthorized_client, with 403 (it is authenticated, and asks for what it may not do)."""

    code = "client_forbidden"


class KeyVerification:
    def __init__(
        self,
        *,
        verifier: ApiKeyVerifier,
        gate: KeyGate,
        audit: AuditRecorder,
        anomalies: Observer,
        clock: Clock,
        throttle_held_keys: bool,
        on_verified: Callable[[], None] = lambda: None,
    ) -> None:
        self._verifier = verifier
        self._gate = gate
        self._audit = audit
        self._anomalies = anomalies
        self._clock = clock
        self._throttle_held_keys = throttle_held_keys
        self._on_verified = on_verified  # a metric: a use is counted, not stored

    async def handle(self, request: ProtocolRequest, client: Client | None) -> Answer:
        source_ip = _source_address(request, client)
        presented = (request.header(KEY_HEADER) or "").strip()
        try:
            identity = await self._verify(presented, source_ip)
        except ApiKeyRefused as refused:
            self._audit.record(
                AuditEvent(
                    at=self._clock.now(),
                    event="api_key.refused",
                    outcome="denied",
                    source_ip=source_ip,
                    user_agent=(request.header("user-agent") or "")[:256] or None,
                    fingerprint=refused.key_id or (fingerprint(presented) if presented else None),
                    detail={"reason": refused.reason},
                )
            )
            return key_refusal(refused, missing=not presented)
        self._on_verified()
        # Seen by the anomaly rules (new network, volume), not stored: a use is not a change.
        self._anomalies.observe(
            AuditEvent(
                at=self._clock.now(),
                event="api_key.used",
                outcome="success",
                fingerprint=identity.key_id,
                source_ip=source_ip,
                user_agent=request.header("user-agent"),
            )
        )
        return Answer(body=identity.as_json(), headers=_KEY_NO_STORE)

    async def _verify(self, presented: str, source_ip: str) -> ApiKeyIdentity:
        """The key's identity, behind the address's lockout. The key is checked first (a keyed
        hash), then one atomic step refuses a locked address and counts a wrong key, so parallel
        guesses never get more than the threshold of answers (SECURITY 57)."""
        try:
            await self._gate.within_address_rate(source_ip)
            try:
                identity = await self._check(presented, source_ip)
            except ApiKeyRefused as refused:
                # Guessing, or a scanner's wild shot; an empty header is no guess.
                guess = refused.reason in ("malformed", "invalid") and bool(presented)
                await self._gate.judge(failed=guess, address=source_ip)
                raise
            await self._gate.judge(failed=False, address=source_ip)
        except TooManyRequests as locked:
            raise ApiKeyRefused("locked_out", retry_after=locked.retry_after) from None
        return identity

    async def _check(self, presented: str, source_ip: str) -> ApiKeyIdentity:
        if not presented:
            raise ApiKeyRefused("malformed")
        identity = await self._verifier.verify(presented, source_ip)
        if self._throttle_held_keys:
            # Held by the volume_spike response (audit/responses.py), on every node.
            held = await self._gate.held(f"key:{identity.key_id}")
            if held is not None:
                raise ApiKeyRefused("rate_limited", key_id=identity.key_id, retry_after=held)
        return identity


_KEY_NO_STORE = {"cache-control": "no-store"}


def _source_address(request: ProtocolRequest, client: Client | None) -> str:
    """The address the key is used from: the peer's own, or what a client allowed to vouch for
    its callers' addresses says (a gateway's ``client_ip``)."""
    if client is None:
        return request.source
    if client.is_public:
        raise InvalidClient("only a confidential client may verify keys on behalf of others")
    claimed = request.params.get("client_ip")
    if claimed is None:
        return request.source
    if not client.may_vouch_client_ip:
        raise MayNotVouch("this client may not send client_ip (see --may-vouch-client-ip)")
    if len(claimed) > 64 or parse_address(claimed) is None:
        raise InvalidRequest("client_ip is not an IP address")
    return claimed


def key_refusal(refused: ApiKeyRefused, *, missing: bool = False) -> Answer:
    description = (
        f"send the API key in the {KEY_HEADER.title()} header" if missing else refused.description
    )
    challenge = render_challenge(
        "ApiKey", realm="tokensmith", error=refused.error, error_description=description
    )
    headers = {**_KEY_NO_STORE, "www-authenticate": challenge}
    if refused.retry_after is not None:
        headers["retry-after"] = str(refused.retry_after)
    body = {"error": refused.error, "error_description": description}
    return Answer(refused.status, body, headers)
