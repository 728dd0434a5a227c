"""DPoP at a resource server (RFC 9449 §7): a bound token counts only with a proof for this
request, signed by the key the token is bound to.

``DpopPolicy.check`` runs after the token itself was validated, in this order: exactly one
``DPoP`` header (§4.3 step 1), the proof's own checks (``jose/dpop.py``: typ, an asymmetric
alg, a public ``jwk``, signature, ``htm``, ``htu``, ``iat`` window, ``ath`` of this token), the
proof's key thumbprint equal to the token's ``cnf.jkt`` (§6.1, constant time), the nonce when
the guard asks for one (§9), and last the replay check (§11.1): only a proof that passed
everything else is remembered, so a refused request leaves no trace.

The URL a proof must name (``htu``) is built from ``public_url``, the origin (and any prefix a
proxy strips) under which clients reach this app, plus the path the app received. The ``Host``
header is the client's to choose, so it is used only with ``trust_request_host=True``: then a
client reaching the app under any name it answers to has its proof accepted for that name.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from tokensmith.core.clock import Clock, SystemClock
from tokensmith.guard.dpop_nonces import DpopNonces
from tokensmith.guard.dpop_replay import MemoryProofCache, ProofCacheFull, ProofReplayCache
from tokensmith.guard.errors import (
    DpopNonceRequired,
    DpopProofRefused,
    InvalidToken,
    ServiceUnavailable,
)
from tokensmith.jose.dpop import DPOP_ALGORITHMS, DpopError, DpopProof, verify_proof

__all__ = ["DpopPolicy", "ProofContext"]

_MAX_PROOFS = 1  # RFC 9449 §4.3 step 1


@dataclass(frozen=True, slots=True)
class ProofContext:
    """What the adapter read from the request for a DPoP check.

    ``path`` is the path as received (percent-encoded, no query); ``origin`` is
    ``scheme://host[:port]`` from the request itself, used only with ``trust_request_host``."""

    method: str
    path: str
    proofs: tuple[str, ...]
    origin: str | None = None


class DpopPolicy:
    def __init__(
        self,
        *,
        public_url: str | None = None,
        trust_request_host: bool = False,
        algorithms: Sequence[str] = DPOP_ALGORITHMS,
        max_age: int = 300,
        max_future: int = 5,
        replay_cache: ProofReplayCache | None = None,
        nonces: DpopNonces | None = None,
        clock: Clock | None = None,
    ) -> None:
        if public_url is None and not trust_request_host:
            raise ValueError(
                "DPoP needs public_url= (the origin clients use), or trust_request_host=True"
            )
        self.public_url = _checked_base(public_url) if public_url is not None else None
        self.trust_request_host = trust_request_host
        self.algorithms = tuple(a for a in algorithms if a in DPOP_ALGORITHMS)
        if not self.algorithms:
            raise ValueError("DPoP needs at least one asymmetric algorithm")
        if not 1 <= max_age <= 3600 or not 0 <= max_future <= 60:
            raise ValueError("DPoP max_age must be 1-3600 s and max_future 0-60 s")
        self.max_age = max_age
        self.max_future = max_future
        self.replay_cache = replay_cache if replay_cache is not None else MemoryProofCache()
        self.nonces = nonces
        self._clock = clock or SystemClock()

    @staticmethod
    def require_one(proofs: Collection[str]) -> str:
        """The one proof of a request; refused when there is none or more than one."""
        if not proofs:
            raise DpopProofRefused("a DPoP token needs a DPoP proof header")
        proof = next(iter(proofs))
        # WSGI and some proxies join repeated headers with commas, which no JWS contains.
        if len(proofs) > _MAX_PROOFS or "," in proof:
            raise DpopProofRefused("send exactly one DPoP proof header")
        return proof

    def check(self, token: str, jkt: str, request: ProofContext) -> DpopProof:
        """The proof of ``request`` for ``token``, bound to ``jkt``; a GuardError otherwise."""
        proof_text = self.require_one(request.proofs)
        now = self._clock.now()
        try:
            proof = verify_proof(
                proof_text,
                method=request.method,
                url=self.expected_url(request),
                now=now,
                max_age=self.max_age,
                max_future=self.max_future,
                access_token=token,
                algorithms=self.algorithms,
            )
        except DpopError as error:
            raise DpopProofRefused(str(error)) from None
        if not hmac.compare_digest(proof.jkt.encode(), jkt.encode()):
            refusal = InvalidToken("the DPoP proof is not signed by the token's key")
            refusal.scheme = "DPoP"
            raise refusal
        if self.nonces is not None and not self.nonces.accepts(proof.nonce, now):
            raise DpopNonceRequired(
                "the DPoP proof needs this resource's nonce", nonce=self.nonces.current(now)
            )
        self._remember(proof, now)
        return proof

    def expected_url(self, request: ProofContext) -> str:
        path = request.path if request.path.startswith("/") else "/" + request.path
        if self.public_url is not None:
            return self.public_url + path
        if request.origin is None:
            raise ServiceUnavailable("the request's URL is unknown; DPoP cannot be checked")
        return request.origin.rstrip("/") + path

    def _remember(self, proof: DpopProof, now: int) -> None:
        # A proof is live until its iat leaves the window (plus the future leeway it got).
        until = max(proof.iat, now) + self.max_age + self.max_future + 1
        try:
            fresh = self.replay_cache.first_use(f"{proof.jkt}:{proof.jti}", until, now)
        except ProofCacheFull:
            raise ServiceUnavailable("too many DPoP proofs in flight; retry") from None
        if not fresh:
            raise DpopProofRefused("the DPoP proof was already used")


def _checked_base(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"DPoP public_url must be an http(s) URL: {url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("DPoP public_url takes no query, fragment or credentials")
    return url.rstrip("/")
