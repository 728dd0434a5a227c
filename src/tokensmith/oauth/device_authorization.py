"""The device authorization endpoint (RFC 8628 §3.1, §3.2).

Behind the client pipeline (``oauth/pipeline.py``) like /token: lockouts, client authentication
(a public client names itself with ``client_id``), admission and the audit trail come first.
Then the client must be registered for the device grant, the scope lie within its own and any
``resource`` be one it may ask for (RFC 8707), all before anything is stored. The answer names a
device code (256 bits from the CSPRNG, stored only as its keyed hash) and a user code
(``oauth/user_codes.py``, also stored hashed, unique among the stored grants).
"""

from __future__ import annotations

from dataclasses import dataclass

from tokensmith.core.clock import Clock
from tokensmith.core.scopes import format_scope
from tokensmith.core.secrets import fingerprint, keyed_hash, random_token
from tokensmith.errors import TemporarilyUnavailable, UnauthorizedClient
from tokensmith.oauth.clients import Client
from tokensmith.oauth.device_grants import DeviceGrant, DeviceGrantStore
from tokensmith.oauth.pipeline import Answer
from tokensmith.oauth.request import ProtocolRequest
from tokensmith.oauth.resource_encryption import ResourceEncryption
from tokensmith.oauth.resources import resolve_audience
from tokensmith.oauth.scopes import narrow_scope
from tokensmith.oauth.user_codes import format_user_code, new_user_code, user_code_fingerprint

__all__ = ["DEVICE_CODE_GRANT", "DEVICE_CODE_PREFIX", "DeviceAuthorization", "DeviceTiming"]

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_CODE_PREFIX = "tsdc_"  # a type prefix, so secret scanners and log redaction find one
# A user-code clash is one in 2^34 per stored grant; a few retries make a failure unheard of.
_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class DeviceTiming:
    expires_in: int  # TOKENSMITH_DEVICE_CODE_TTL
    interval: int  # TOKENSMITH_DEVICE_POLL_INTERVAL


class DeviceAuthorization:
    def __init__(
        self,
        *,
        grants: DeviceGrantStore,
        pepper: bytes,
        clock: Clock,
        issuer: str,
        default_audience: str,
        timing: DeviceTiming,
        encryption: ResourceEncryption | None = None,
    ) -> None:
        self._encryption = encryption or ResourceEncryption()
        self._grants = grants
        self._pepper = pepper
        self._clock = clock
        self._verification_uri = issuer + "/device"
        self._default_audience = default_audience
        self._timing = timing

    async def handle(self, request: ProtocolRequest, client: Client | None) -> Answer:
        assert client is not None  # the pipeline always authenticates the client here
        if DEVICE_CODE_GRANT not in client.grant_types:
            raise UnauthorizedClient("this client may not use the device authorization grant")
        scope = format_scope(set(narrow_scope(request.params.get("scope"), client.scopes)))
        requested = request.params.all("resource")
        if requested:
            audience = resolve_audience(requested, client, self._default_audience)
            if client.access_token_format == "jwt":
                self._encryption.key_for(audience)  # mixed with an encrypting resource: refused
        resource = " ".join(dict.fromkeys(requested)) or None
        device_code, user_code = await self._store(client, scope, resource)
        shown = format_user_code(user_code)
        return Answer(
            body={
                "device_code": device_code,
                "user_code": shown,
                "verification_uri": self._verification_uri,
                "verification_uri_complete": f"{self._verification_uri}?user_code={shown}",
                "expires_in": self._timing.expires_in,
                "interval": self._timing.interval,
            },
            event="device.authorization_issued",
            fingerprint=fingerprint(device_code),
            detail={"scope": scope, "user_code": user_code_fingerprint(self._pepper, user_code)},
        )

    async def _store(self, client: Client, scope: str, resource: str | None) -> tuple[str, str]:
        now = self._clock.now()
        for _ in range(_ATTEMPTS):
            device_code = random_token(32, DEVICE_CODE_PREFIX)
            user_code = new_user_code()
            grant = DeviceGrant(
                device_code_hash=keyed_hash(self._pepper, device_code),
                user_code_hash=keyed_hash(self._pepper, user_code),
                client_id=client.client_id,
                scope=scope,
                created_at=now,
                expires_at=now + self._timing.expires_in,
                poll_interval=self._timing.interval,
                resource=resource,
            )
            if await self._grants.add(grant):
                return device_code, user_code
        raise TemporarilyUnavailable("no free user code; try again")
