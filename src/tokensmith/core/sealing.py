"""Secrets at rest: AES-256-GCM under keys derived from the master key.

The master key never encrypts anything itself. HKDF-SHA256 derives one subkey per purpose (sealing,
secret pepper), so a subkey that leaks through one use says nothing about the others. Every sealed
value is bound to a context string (its table and row) as associated data, so a ciphertext copied
into another row does not open.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tokensmith.core.secrets import b64url, b64url_decode

__all__ = ["MASTER_KEY_BYTES", "MasterKey", "SealError", "generate_master_key"]

MASTER_KEY_BYTES = 32
_VERSION = b"\x01"
_NONCE_BYTES = 12


class SealError(Exception):
    """A sealed value did not open: wrong master key, or the value was altered."""


def generate_master_key() -> str:
    return b64url(os.urandom(MASTER_KEY_BYTES))


class MasterKey:
    """The root secret, held only in memory, and the keys derived from it."""

    def __init__(self, raw: bytes) -> None:
        if len(raw) != MASTER_KEY_BYTES:
            raise ValueError(f"a master key is {MASTER_KEY_BYTES} bytes")
        self._aead = AESGCM(_derive(raw, b"tokensmith/seal/v1"))
        self.pepper = _derive(raw, b"tokensmith/pepper/v1")
        self.api_key_pepper = _derive(raw, b"tokensmith/api-keys/v1")
        # Server DPoP nonces (RFC 9449 §8): every node derives the same key, so all agree.
        self.dpop_nonce_key = _derive(raw, b"tokensmith/dpop-nonce/v1")

    @classmethod
    def from_text(cls, text: str) -> MasterKey:
        """Parse the base64url form that ``generate_master_key`` produces."""
        try:
            raw = b64url_decode(text.strip())
        except ValueError:
            raise ValueError(
                "a master key is 32 random bytes in base64url (43 characters)"
            ) from None
        if len(raw) != MASTER_KEY_BYTES:
            raise ValueError("a master key is 32 random bytes in base64url (43 characters)")
        return cls(raw)

    def __repr__(self) -> str:  # never print key material, even by accident
        return "MasterKey(<hidden>)"

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def unseal(self, sealed: bytes, context: str) -> bytes:
        if len(sealed) < 1 + _NONCE_BYTES + 16 or sealed[:1] != _VERSION:
            raise SealError("sealed value is malformed")
        nonce = sealed[1 : 1 + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, sealed[1 + _NONCE_BYTES :], context.encode())
        except InvalidTag:
            raise SealError("sealed value does not open with this master key") from None


def _derive(raw: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(raw)
