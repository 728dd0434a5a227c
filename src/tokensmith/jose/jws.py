"""Compact JWS for JWTs: sign with the active key, verify with a key pinned to one algorithm.

Verification enforces, before any cryptography runs, the header rules of RFC 8725 §2-3 and
RFC 7515 §4.1.11: a size cap, exactly three segments, a known ``kid``, ``alg`` equal to the
key's own, no ``crit``, and no key-carrying headers (``jwk``, ``jku``, ``x5u``, ``x5c``), which are
never followed.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning

from tokensmith.core.secrets import b64url_json
from tokensmith.errors import TokensmithError
from tokensmith.jose.keys import SigningKey, VerificationKey

__all__ = ["MAX_TOKEN_BYTES", "InvalidSignature", "sign_jwt", "verify_jwt"]

MAX_TOKEN_BYTES = 8192
_FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit", "b64", "zip", "enc"})


class InvalidSignature(TokensmithError):
    """The token is not a JWS that one of our keys signed; the message is safe to log."""


def sign_jwt(key: SigningKey, claims: Mapping[str, Any], typ: str = "JWT") -> str:
    """A JWT of ``claims`` with header ``typ``, ``alg`` and ``kid`` (``signer.py``)."""
    return key.signer.sign(claims, typ)


def verify_jwt(
    token: str,
    keys: Mapping[str, VerificationKey],
    *,
    sole_key: VerificationKey | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (header, claims) of a token one of ``keys`` signed. Claims are not checked here."""
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidSignature("token is too large")
    header = _parse_header(token)
    kid = header.get("kid")
    # A header without kid may use the one key a party registered (RFC 7515 §4.1.4: optional).
    key = keys.get(kid) if isinstance(kid, str) else (sole_key if "kid" not in header else None)
    if key is None:
        raise InvalidSignature("unknown key id")
    if header.get("alg") != key.alg:
        raise InvalidSignature("algorithm does not match the key")
    try:
        with _legacy_name_allowed(key.alg):
            decoded = jwt.decode(token, key.key, algorithms=[key.alg])
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidSignature(f"signature check failed ({type(exc).__name__})") from None
    return dict(decoded.header), dict(decoded.claims)


def _parse_header(token: str) -> dict[str, Any]:
    segments = token.split(".")
    if len(segments) != 3 or not all(segments):
        raise InvalidSignature("a JWS has three non-empty segments")
    try:
        header = b64url_json(segments[0])
    except (ValueError, UnicodeDecodeError):
        raise InvalidSignature("header is not base64url JSON") from None
    if not isinstance(header, dict):
        raise InvalidSignature("header is not a JSON object")
    present = _FORBIDDEN_HEADERS.intersection(header)
    if present:
        raise InvalidSignature(f"header carries {sorted(present)[0]!r}, which is never accepted")
    return header


@contextlib.contextmanager
def _legacy_name_allowed(alg: str) -> Iterator[None]:
    """RFC 9864 deprecates "EdDSA"; an operator who picked it for an old peer did so on purpose."""
    if alg != "EdDSA":
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "EdDSA is deprecated", SecurityWarning)
        yield
