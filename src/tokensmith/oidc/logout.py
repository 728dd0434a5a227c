"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2, §3).

A redirect after logout goes only to a ``post_logout_redirect_uri`` registered for the client named
by a valid ``id_token_hint`` (our signature and issuer; expiry does not matter: the hint names a
past login). Without a valid hint the person is asked to confirm, so a stray link cannot log
them out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from tokensmith.jose.jws import InvalidSignature, verify_jwt
from tokensmith.jose.keys import VerificationKey

__all__ = ["IdTokenHint", "logout_redirect", "read_id_token_hint"]


@dataclass(frozen=True, slots=True)
class IdTokenHint:
    client_id: str
    subject: str


def read_id_token_hint(
    hint: str | None, keys: Mapping[str, VerificationKey], issuer: str
) -> IdTokenHint | None:
    if hint is None:
        return None
    try:
        header, claims = verify_jwt(hint, keys)
    except InvalidSignature:
        return None
    audience, subject = claims.get("aud"), claims.get("sub")
    if header.get("typ") != "JWT" or claims.get("iss") != issuer:
        return None
    if not isinstance(audience, str) or not isinstance(subject, str):
        return None
    return IdTokenHint(client_id=audience, subject=subject)


def logout_redirect(
    requested: str | None, registered: tuple[str, ...], state: str | None
) -> str | None:
    """The URI to return to, only if it is registered byte for byte."""
    if requested is None or requested not in registered:
        return None
    query = urlencode({"state": state}) if state else ""
    if not query:
        return requested
    return f"{requested}{'&' if urlsplit(requested).query else '?'}{query}"
