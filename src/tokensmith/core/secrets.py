"""Random secrets, keyed hashes of secrets, and constant-time comparison.

High-entropy secrets (client secrets, refresh tokens, API keys, codes) are stored only as
HMAC-SHA256 under a server-side pepper: a database dump alone cannot use or recover them, and a
check costs about a microsecond, unlike a password hash (see docs/security.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = [
    "b64url",
    "b64url_decode",
    "bearer_matches",
    "constant_time_equals",
    "fingerprint",
    "keyed_hash",
    "random_token",
]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding; raises ValueError on anything else."""
    if not text or any(c not in _B64URL_ALPHABET for c in text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_B64URL_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


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
