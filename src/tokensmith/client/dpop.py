"""The client's side of DPoP (RFC 9449): one key per session, a proof on every request that
carries or asks for a bound token, and the servers' nonces.

A ``DpopKey`` signs proofs (``jose/dpop.py: make_proof``): at the token endpoint without
``ath`` (§4.2), at a resource with the ``ath`` of the token sent (§7.1). A server that wants a
nonce answers ``use_dpop_nonce`` with a ``DPoP-Nonce`` header (400 at the token endpoint, §8;
401 at a resource, §9); the key remembers the latest nonce per origin, from every answer that
carries one, and the caller retries once. The private key is never shown: no repr, no log line.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from tokensmith.client.discovery import ServerMetadata
from tokensmith.core.clock import Clock, SystemClock
from tokensmith.jose.dpop import (
    DPOP_ALGORITHMS,
    generate_proof_key,
    jwk_thumbprint,
    make_proof,
    public_jwk,
)

__all__ = ["DpopKey", "choose_dpop", "proof_url"]

_PREFERRED = ("ES256", "EdDSA", "ES384", "PS256", "RS256")
_MAX_NONCE = 512


def proof_url(url: str | httpx.URL) -> str:
    """The ``htu`` of a request: its URL without query and fragment (RFC 9449 §4.2)."""
    parts = urlsplit(str(url))
    return f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"


def _origin(url: str | httpx.URL) -> str:
    parts = urlsplit(str(url))
    return f"{parts.scheme}://{parts.netloc}".lower()


class DpopKey:
    def __init__(
        self, private_jwk: Mapping[str, Any], *, alg: str = "ES256", clock: Clock | None = None
    ) -> None:
        if alg not in DPOP_ALGORITHMS:
            raise ValueError(f"{alg!r} is not a DPoP algorithm")
        self._jwk = dict(private_jwk)
        self.alg = alg
        self.jkt = jwk_thumbprint(public_jwk(self._jwk))
        self._clock = clock or SystemClock()
        self._nonces: dict[str, str] = {}
        self._lock = threading.Lock()

    @classmethod
    def generate(cls, alg: str = "ES256", *, clock: Clock | None = None) -> DpopKey:
        return cls(generate_proof_key(alg), alg=alg, clock=clock)

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any], *, clock: Clock | None = None) -> DpopKey:
        """The key a session stored (``to_stored``): the private JWK and its algorithm."""
        jwk, alg = stored.get("jwk"), stored.get("alg")
        if not isinstance(jwk, Mapping) or not isinstance(alg, str):
            raise ValueError("the stored DPoP key is unreadable")
        return cls(jwk, alg=alg, clock=clock)

    def to_stored(self) -> dict[str, Any]:
        return {"jwk": dict(self._jwk), "alg": self.alg}

    def proof(self, method: str, url: str | httpx.URL, *, access_token: str | None = None) -> str:
        return make_proof(
            self._jwk,
            method=method,
            url=proof_url(url),
            now=self._clock.now(),
            access_token=access_token,
            nonce=self.nonce_for(url),
            alg=self.alg,
        )

    def nonce_for(self, url: str | httpx.URL) -> str | None:
        return self._nonces.get(_origin(url))

    def remember_nonce(self, url: str | httpx.URL, response: httpx.Response) -> bool:
        """Keep the ``DPoP-Nonce`` of ``response`` for its origin; True if it held a new one."""
        nonce = response.headers.get("dpop-nonce")
        if nonce is None or not 0 < len(nonce) <= _MAX_NONCE or not nonce.isprintable():
            return False
        origin = _origin(url)
        with self._lock:
            known = self._nonces.get(origin)
            self._nonces[origin] = nonce
        return bool(known != nonce)

    def __repr__(self) -> str:
        return f"<DpopKey {self.alg} jkt={self.jkt}>"


def choose_dpop(
    metadata: ServerMetadata, enabled: bool | None, *, clock: Clock | None = None
) -> DpopKey | None:
    """A new key when DPoP is on: ``enabled`` True, or None and the issuer lists DPoP algorithms
    (``dpop_signing_alg_values_supported``); the algorithm is the first of ours it lists."""
    if enabled is False or (enabled is None and not metadata.dpop_algs):
        return None
    offered = metadata.dpop_algs or ("ES256",)
    alg = next((a for a in _PREFERRED if a in offered), None)
    if alg is None:
        if enabled:
            raise ValueError(f"{metadata.issuer} lists no DPoP algorithm this client signs with")
        return None
    return DpopKey.generate(alg, clock=clock)
