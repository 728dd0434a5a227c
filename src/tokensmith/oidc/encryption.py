"""Encryption of what the server sends a client (OIDC Core §10.2, Registration §2).

A client that registered ``id_token_encrypted_response_alg`` (and ``..._enc``) gets its ID tokens
signed, then encrypted to the encryption key of its registered JWKS (a nested JWT); one that
registered ``userinfo_encrypted_response_alg`` gets the userinfo response the same way, as
``application/jwt``. The key is found anew each time from the stored JWKS, so replacing the
client's keys takes effect at once. Registration checks a usable key exists (``validated``); if
one has vanished since, issuing fails closed rather than sending the claims readable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tokensmith.jose.jwe import EncryptionKey, encrypt_jwt, encryption_choice, find_encryption_key

__all__ = ["Recipient", "check_client_encryption", "recipient"]


@dataclass(frozen=True, slots=True)
class Recipient:
    """Whom a nested JWT is encrypted to, and with which content encryption."""

    key: EncryptionKey
    enc: str

    def seal(self, signed: str) -> str:
        return encrypt_jwt(signed, self.key, self.enc)


def recipient(jwks: Mapping[str, Any] | None, alg: str | None, enc: str | None) -> Recipient | None:
    """The recipient a client's registered choice names, or None when it asked for none.

    ValueError when it asked for encryption and its JWKS has no key to encrypt to."""
    choice = encryption_choice(alg, enc)
    if choice is None:
        return None
    key = find_encryption_key(jwks, choice[0])
    if key is None:
        raise ValueError(f"the client's JWKS has no {choice[0]} encryption key")
    return Recipient(key, choice[1])


def check_client_encryption(
    jwks: Mapping[str, Any] | None, alg: str | None, enc: str | None, what: str
) -> tuple[str | None, str | None]:
    """A registration's (alg, enc) for ``what`` (id_token, userinfo), enc defaulted; ValueError
    naming ``what`` if it is refused or the JWKS holds no key for it."""
    try:
        found = recipient(jwks, alg, enc)
    except ValueError as exc:
        raise ValueError(f"{what} encryption: {exc}") from None
    return (found.key.alg, found.enc) if found is not None else (None, None)
