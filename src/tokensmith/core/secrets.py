"""Random secrets, keyed hashes of secrets, and constant-time comparison.

High-entropy secrets (client secrets, refresh tokens, API keys, codes) are stored only as
HMAC-SHA256 under a server-side pepper: a database dump alone cannot use or recover them, and a
check costs about a microsecond, unlike a password hash (see docs/security.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from typing import Any

__all__ = [
    "b64url",
    "b64url_decode",
    "b64url_is_canonical",
    "b64url_json",
    "bearer_matches",
    "constant_time_equals",
    "fingerprint",
    "keyed_hash",
    "pkce_s256",
    "random_token",
    "redact_secrets",
]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_s256(verifier: str) -> str:
    """A PKCE verifier's S256 challenge (RFC 7636 §4.2): what the server checks and clients send."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding; raises ValueError on anything else, including a
    non-canonical spelling (``b64url_is_canonical``)."""
    if not text or any(c not in _B64URL_ALPHABET for c in text) or not b64url_is_canonical(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_json(segment: str) -> Any:
    """The JSON value a strict base64url segment (a JWT's header or claims) spells; ValueError
    for anything else. Nesting past the parser's recursion limit raises RecursionError, which is
    no ValueError: every caller that refuses ValueError would answer it with a 500. A lone
    surrogate (``"\\ud800"``, or its raw bytes) is no Unicode text (RFC 8259 §8.2): refused here,
    or the first ``encode()`` of such a string (a hash, a comparison) would raise far from here."""
    try:
        value = json.loads(b64url_decode(segment).decode("utf-8"))
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # UnicodeEncodeError: a ValueError
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    return value


def b64url_is_canonical(text: str) -> bool:
    """Whether an unpadded base64url string is the one spelling of its bytes (RFC 4648 §3.5).

    A length of 4k+2 leaves 4 unused bits in the last character, 4k+3 leaves 2, and 4k+1 is no
    encoding at all. Decoders ignore unused bits, so without this check one signature (or one
    claim set) has up to 16 spellings: a token that is refused, revoked or cached under one
    spelling would pass under another (SECURITY.md case 66). Same rule as joserfc's decoder.
    The alphabet is the caller's to check (a regex, usually).
    """
    tail = len(text) % 4
    if tail == 0:
        return True
    allowed = _CANONICAL_LAST.get(tail)
    return allowed is not None and text[-1] in allowed


_B64URL_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
# The characters whose unused low bits are zero: 2 used bits of the last sextet (4k+2 chars),
# or 4 used bits (4k+3 chars).
_CANONICAL_LAST = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}


def random_token(nbytes: int = 32, prefix: str = "") -> str:
    """A CSPRNG secret of ``nbytes`` bytes, base64url, behind a scanner-friendly type prefix."""
    return prefix + b64url(secrets.token_bytes(nbytes))


def keyed_hash(pepper: bytes, secret: str) -> bytes:
    return hmac.new(pepper, secret.encode("utf-8"), hashlib.sha256).digest()


def constant_time_equals(a: bytes | str, b: bytes | str) -> bool:
    if isinstance(a, str):
        a = a.encode("utf-8")
    if isinstance(b, str):
        b = b.encode("utf-8")
    return hmac.compare_digest(a, b)


def fingerprint(secret: str) -> str:
    """A short, non-reversible name for a secret, safe for logs and audit records."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:16]


def bearer_matches(authorization: str | None, expected: str) -> bool:
    """``Authorization: Bearer <expected>`` (scheme case-insensitive), compared in constant time;
    the expected token's digest is compared, so its length does not leak either."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    digest = hashlib.sha256
    return hmac.compare_digest(digest(token.encode()).digest(), digest(expected.encode()).digest())


# What we mint, by its type prefix (API key, client secret, refresh and opaque access token,
# code, device code), and a JWT (its header always starts "eyJ", base64url of '{"').
_SECRET = re.compile(
    r"(tsk|tscs|tsrt|tsat|tsac|tsdc)_[A-Za-z0-9_-]+|eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_.-]*"
)


def redact_secrets(text: str) -> str:
    """``text`` (a request path, for a log line) with anything shaped like a secret we mint, or
    a JWT, cut to its type: a path is no place for one, but a client that put one there must
    not also get it written to the logs."""
    return _SECRET.sub(lambda m: f"{m[1]}_[redacted]" if m[1] else "[jwt redacted]", text)
