"""Finding the one credential of a request (RFC 6750 §2), before anything is checked.

Accepted: ``Authorization: Bearer <token>``, ``Authorization: DPoP <token>`` (RFC 9449 §7.1;
the guard then needs a proof), ``Authorization: ApiKey <key>`` and ``X-API-Key``.
Refused: any credential in the URL query (RFC 6750 §2.3 is not offered: URLs end up in logs,
SECURITY.md case 15), two credentials at once (RFC 6750 §2), and an oversized header, which is
refused before any parsing or cryptography (case 11).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl

from tokensmith.guard.errors import InvalidRequest, InvalidToken, MissingCredential

__all__ = ["MAX_CREDENTIAL_CHARS", "QUERY_CREDENTIALS", "Credential", "read_credential"]

MAX_CREDENTIAL_CHARS = 8192
QUERY_CREDENTIALS = frozenset({"access_token", "api_key", "apikey", "x-api-key"})


@dataclass(frozen=True, slots=True)
class Credential:
    kind: Literal["bearer", "dpop", "api_key"]
    value: str


def read_credential(authorization: str | None, api_key: str | None, query: str) -> Credential:
    if query and _has_query_credential(query):
        raise InvalidRequest("credentials are never accepted in the URL; send a header")
    for value in (authorization, api_key):
        if value is not None and len(value) > MAX_CREDENTIAL_CHARS:
            raise InvalidToken("the credential is too large")
    if authorization is not None and api_key is not None:
        raise InvalidRequest("send one credential, not two")
    if api_key is not None:
        return Credential("api_key", _nonblank(api_key.strip(), "the X-API-Key header is empty"))
    if authorization is None:
        raise MissingCredential("this request needs a Bearer token or an API key")
    scheme, _, rest = authorization.strip().partition(" ")
    value = _nonblank(rest.strip(), "the Authorization header has no credential")
    if scheme.lower() == "bearer":
        return Credential("bearer", value)
    if scheme.lower() == "dpop":
        return Credential("dpop", value)
    if scheme.lower() == "apikey":
        return Credential("api_key", value)
    raise MissingCredential("use the Bearer scheme, or send an API key")


def _nonblank(value: str, description: str) -> str:
    if not value or any(c in value for c in " \t\r\n"):
        raise InvalidToken(description if not value else "the credential is malformed")
    return value


def _has_query_credential(query: str) -> bool:
    names = {name.lower() for name, _ in parse_qsl(query, keep_blank_values=True)}
    return not names.isdisjoint(QUERY_CREDENTIALS)
