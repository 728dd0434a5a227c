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

from tokensmith.core.redirect_uris import parse_redirect_uri
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
    """The URI to return to, only if it parses as registration demands and is registered byte for
    byte (RP-Initiated Logout 1.0 §3: "MUST ... exactly match"; RFC 9700 §4.1.3).

    Unlike the authorization endpoint there is no loopback port leeway: RFC 8252 §7.3 covers the
    authorization response only, and a logout return address is a page the RP registered, not a
    listener on a port picked at run time.
    """
    if requested is None or requested not in registered or not _parses(requested):
        return None
    query = urlencode({"state": state}) if state else ""
    if not query:
        return requested
    return f"{requested}{'&' if urlsplit(requested).query else '?'}{query}"


def _parses(uri: str) -> bool:
    try:
        parse_redirect_uri(uri)
    except ValueError:
        return False  # registered before registration was this strict: refuse, do not redirect
    return True
