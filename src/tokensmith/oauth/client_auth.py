"""Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3).

A client authenticates with the one method it registered. ``client_secret_basic`` carries the
form-urlencoded id and secret in the Authorization header (§2.3.1); ``client_secret_post`` carries
them in the body; ``private_key_jwt`` sends a signed assertion (RFC 7523, see client_assertion).
Using two methods at once is refused (§2.3: a client MUST NOT use more than one). An unknown
client and a wrong secret produce the same error after the same work, so neither the answer nor
its timing tells which it was.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote_plus

from tokensmith.core.clock import Clock
from tokensmith.core.secrets import b64url_json, keyed_hash
from tokensmith.errors import InvalidClient, InvalidRequest
from tokensmith.oauth.client_assertion import (
    ASSERTION_TYPE,
    AssertionReplayStore,
    client_keys,
    verify_client_assertion,
)
from tokensmith.oauth.clients import Client, ClientStore, has_bad_checksum, secret_matches
from tokensmith.oauth.params import Params

__all__ = [
    "ClientAuthenticator",
    "ClientCredentials",
    "authenticate_client",
    "credential_mark",
    "read_credentials",
]

Method = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
AssertionCheck = Callable[[Client, str], Awaitable[None]]
_MAX_ID = 128
_C0 = re.compile("[\x00-\x1f]")  # C0 controls, one scan in C
_MAX_SECRET = 512
# Stands in for a client that does not exist, so the secret check still runs in full.
_ABSENT = Client(
    client_id="",
    name="",
    is_public=False,
    grant_types=(),
    redirect_uris=(),
    scope="",
    auth_method="client_secret_basic",
    secret_hash=b"\0" * 32,
)


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    method: Method
    client_id: str
    secret: str | None = None
    assertion: str | None = None

    def __repr__(self) -> str:
        return f"ClientCredentials(method={self.method!r}, client_id={self.client_id!r})"


def read_credentials(authorization: str | None, params: Params) -> ClientCredentials:
    """What the request presents; raises InvalidClient / InvalidRequest for malformed input."""
    body_id, body_secret = params.get("client_id"), params.get("client_secret")
    assertion_type, assertion = params.get("client_assertion_type"), params.get("client_assertion")
    if assertion_type is not None or assertion is not None:
        if authorization is not None or body_secret is not None:
            raise InvalidRequest("more than one client authentication method was used")
        if assertion_type != ASSERTION_TYPE or assertion is None:
            raise InvalidClient("unsupported client assertion")
        client_id = body_id or _unverified_subject(assertion)
        _check_lengths(client_id, "")
        return ClientCredentials("private_key_jwt", client_id, assertion=assertion)
    if authorization is not None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise InvalidClient("client authentication uses HTTP Basic or the request body")
        if body_secret is not None:
            raise InvalidRequest("client credentials were sent both in the header and the body")
        client_id, secret = _decode_basic(value.strip())
        if body_id is not None and body_id != client_id:
            raise InvalidRequest("client_id in the body differs from the authenticated client")
        return ClientCredentials("client_secret_basic", client_id, secret)
    if body_id is None:
        raise InvalidClient("client authentication is required")
    _check_lengths(body_id, body_secret or "")
    if body_secret is not None:
        return ClientCredentials("client_secret_post", body_id, body_secret)
    return ClientCredentials("none", body_id)


async def authenticate_client(
    credentials: ClientCredentials,
    clients: ClientStore,
    pepper: bytes,
    now: int,
    *,
    assertions: AssertionCheck | None = None,
) -> Client:
    if credentials.secret is not None and has_bad_checksum(credentials.secret):
        # Like an API key's (case 48): a mistyped secret costs no lookup and no hash.
        raise InvalidClient("client authentication failed")
    client = await clients.get(credentials.client_id)
    candidate = client or _ABSENT
    if credentials.method == "private_key_jwt":
        if client is None or client.auth_method != "private_key_jwt" or assertions is None:
            raise InvalidClient("client authentication failed")
        await assertions(client, credentials.assertion or "")
        return client
    if credentials.method == "none":
        if client is None or not client.is_public:
            raise InvalidClient("client authentication failed")
        return client
    matched = secret_matches(candidate, pepper, credentials.secret or "", now)
    if client is None or not matched or client.is_public:
        raise InvalidClient("client authentication failed")
    if client.auth_method != credentials.method:
        raise InvalidClient(f"this client authenticates with {client.auth_method}")
    return client


def credential_mark(credentials: ClientCredentials | None, pepper: bytes) -> bytes:
    """A keyed fingerprint of how a request authenticated its client: the method and, for a
    secret, the secret presented; for an assertion, the key its header names. Two requests that
    authenticated the same way have the same mark; the mark reveals neither secret nor key.
    Only ever computed after the credentials were verified."""
    if credentials is None:
        return keyed_hash(pepper, "credential:")
    which = ""
    if credentials.secret is not None:
        which = credentials.secret
    elif credentials.assertion is not None:
        try:
            header = b64url_json(credentials.assertion.split(".", 1)[0])
        except ValueError:
            header = None
        kid = header.get("kid") if isinstance(header, dict) else None
        which = kid if isinstance(kid, str) else ""
    return keyed_hash(pepper, f"credential:{credentials.method}:{credentials.client_id}:{which}")


class ClientAuthenticator:
    """Every client authentication method, behind one call."""

    def __init__(
        self,
        *,
        clients: ClientStore,
        pepper: bytes,
        clock: Clock,
        issuer: str,
        leeway: int,
        replay: AssertionReplayStore,
    ) -> None:
        self._clients = clients
        self._pepper = pepper
        self._clock = clock
        self._issuer = issuer
        self._leeway = leeway
        self._replay = replay

    async def authenticate(self, credentials: ClientCredentials) -> Client:
        """The client the credentials (``read_credentials``, parsed once per request) prove."""
        return await authenticate_client(
            credentials, self._clients, self._pepper, self._clock.now(), assertions=self._check
        )

    async def _check(self, client: Client, assertion: str) -> None:
        await verify_client_assertion(
            assertion,
            client_id=client.client_id,
            keys=client_keys(client.jwks),
            issuer=self._issuer,
            now=self._clock.now(),
            leeway=self._leeway,
            replay=self._replay,
        )


def _unverified_subject(assertion: str) -> str:
    """The client an assertion claims to be, read before its signature is checked against it."""
    try:
        payload = b64url_json(assertion.split(".")[1])
        subject = payload["sub"]
    except (IndexError, ValueError, KeyError, TypeError):
        raise InvalidClient("client authentication failed") from None
    if not isinstance(subject, str):
        raise InvalidClient("client authentication failed")
    return subject


def _decode_basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidClient("malformed Basic credentials") from None
    raw_id, colon, raw_secret = decoded.partition(":")
    if not colon:
        raise InvalidClient("malformed Basic credentials")
    client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
    _check_lengths(client_id, secret)
    return client_id, secret


def _check_lengths(client_id: str, secret: str) -> None:
    if not client_id or len(client_id) > _MAX_ID or len(secret) > _MAX_SECRET:
        raise InvalidClient("client authentication failed")
    if _C0.search(client_id) or _C0.search(secret):
        raise InvalidRequest("client credentials contain a control character")
