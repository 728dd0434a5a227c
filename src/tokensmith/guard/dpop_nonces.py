"""Resource-server nonces for DPoP proofs (RFC 9449 §9), kept without state.

A nonce is a time window and a MAC of it under a secret of this guard: ``current`` hands out the
window's nonce, ``accepts`` takes the current window's and the previous one's, so a nonce lives
between one and two ``lifetime``s. Several processes given the same ``secret`` accept each
other's nonces; without one, each process draws its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["DpopNonces"]

_MAC_BYTES = 16


class DpopNonces:
    def __init__(self, secret: bytes | None = None, *, lifetime: int = 300) -> None:
        if secret is not None and len(secret) < 16:
            raise ValueError("a DPoP nonce secret needs at least 16 bytes")
        if lifetime < 10:
            raise ValueError("a DPoP nonce lifetime needs at least 10 seconds")
        self._secret = secret or secrets.token_bytes(32)
        self.lifetime = lifetime

    def current(self, now: int) -> str:
        return self._nonce(now // self.lifetime)

    def accepts(self, nonce: str | None, now: int) -> bool:
        if not nonce or len(nonce) > 64:
            return False
        window = now // self.lifetime
        given = nonce.encode("ascii", "replace")
        # Both compared, so the time taken does not say which window matched.
        fresh = hmac.compare_digest(given, self._nonce(window).encode())
        recent = hmac.compare_digest(given, self._nonce(window - 1).encode())
        return fresh or recent

    def _nonce(self, window: int) -> str:
        counter = window.to_bytes(8, "big", signed=True)
        mac = hmac.new(self._secret, counter, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(counter + mac).rstrip(b"=").decode()

    def __repr__(self) -> str:
        return f"<DpopNonces lifetime={self.lifetime}>"
