"""DPoP at the authorization server (RFC 9449 §5, §8, §10, §11.1).

A proof is checked in full before the grant runs, so a refused proof spends no code and rotates
no refresh token: ``jose/dpop.py``'s stateless checks against this server's own endpoint URL
(derived from the issuer, never from the Host header), then the server nonce when one is
required, then the replay record of its ``jti``. What passes reaches the grant as
``ProtocolRequest.dpop_jkt``; ``DpopBinding`` then only writes that key into the token
(``cnf.jkt``, RFC 9449 §6) and names the token type ``DPoP`` (§5).

Pushed authorization requests (RFC 9449 §10.1): a ``DPoP`` header at /par binds the code as the
``dpop_jkt`` parameter does. /par checks it with ``DpopChecker.check(proof, method="POST",
url=issuer + "/par")`` and keeps the thumbprint as the pushed request's ``dpop_jkt`` (refusing a
``dpop_jkt`` parameter that names another key); ``oauth/authorization.py`` stores it on the code.

Server nonces are stateless: an HMAC of the current time bucket under a key derived from the
master key, the previous bucket still accepted, so every node issues and accepts the same ones.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol

from tokensmith.core.clock import Clock
from tokensmith.core.secrets import b64url, constant_time_equals
from tokensmith.errors import InvalidDpopProof, UseDpopNonce
from tokensmith.jose.dpop import DpopError, DpopProof, verify_proof
from tokensmith.oauth.access_tokens import TokenContext
from tokensmith.oauth.clients import Client
from tokensmith.oauth.issuance import ResponseHook
from tokensmith.oauth.request import ProtocolRequest

__all__ = [
    "NONCE_PERIOD",
    "DpopBinding",
    "DpopChecker",
    "DpopNonces",
    "ProofReplayStore",
    "TokenEndpointDpop",
    "proof_hash",
]

NONCE_PERIOD = 300  # seconds per nonce bucket; a nonce is good for one to two periods
_MAX_FUTURE = 5  # seconds a proof's iat may run ahead of our clock


class ProofReplayStore(Protocol):
    """Proofs seen, by ``proof_hash``, kept until ``expires_at`` (RFC 9449 §11.1)."""

    async def remember(self, proof_hash: bytes, expires_at: int) -> bool:
        """Record a proof; False if it was recorded before, here or on another node."""
        ...

    async def purge_expired(self, before: int, limit: int = ...) -> int:
        """Delete at most ``limit`` records that expired before ``before``; how many went."""
        ...


def proof_hash(jkt: str, jti: str) -> bytes:
    """A jti is unique per key, so the replay record is keyed by both (RFC 9449 §11.1)."""
    return hashlib.sha256(f"{jkt}\x00{jti}".encode()).digest()


class DpopNonces:
    """``DPoP-Nonce`` values (RFC 9449 §8): the same on every node, changing each period."""

    def __init__(self, key: bytes, period: int = NONCE_PERIOD) -> None:
        self._key = key
        self._period = period

    def current(self, now: int) -> str:
        return self._for_bucket(now // self._period)

    def accepts(self, nonce: str, now: int) -> bool:
        bucket = now // self._period
        # Both compared, always: the time taken says nothing about which one matched.
        fresh = constant_time_equals(nonce, self._for_bucket(bucket))
        previous = constant_time_equals(nonce, self._for_bucket(bucket - 1))
        return fresh or previous

    def _for_bucket(self, bucket: int) -> str:
        mac = hmac.new(self._key, f"dpop-nonce:{bucket}".encode(), hashlib.sha256)
        return b64url(mac.digest()[:24])


class DpopChecker:
    """Every check of a proof, stateless and stateful, in the order RFC 9449 §4.3 gives."""

    def __init__(
        self,
        *,
        replay: ProofReplayStore,
        nonces: DpopNonces,
        clock: Clock,
        max_age: int,
        require_nonce: bool,
    ) -> None:
        self._replay = replay
        self._nonces = nonces
        self._clock = clock
        self._max_age = max_age
        self.require_nonce = require_nonce

    async def check(
        self, proof: str, *, method: str, url: str, access_token: str | None = None
    ) -> DpopProof:
        """The verified proof, or InvalidDpopProof / UseDpopNonce (with the nonce to use)."""
        now = self._clock.now()
        try:
            verified = verify_proof(
                proof,
                method=method,
                url=url,
                now=now,
                max_age=self._max_age,
                max_future=_MAX_FUTURE,
                access_token=access_token,
            )
        except DpopError as exc:
            raise InvalidDpopProof(str(exc)) from None
        if self.require_nonce and (
            verified.nonce is None or not self._nonces.accepts(verified.nonce, now)
        ):
            # §8: a missing or stale nonce is answered with a fresh one; nothing is recorded.
            raise UseDpopNonce("the DPoP proof must carry the server's nonce", nonce=self.nonce())
        # Kept until the proof is too old to be accepted anyway (step 11), on a node whose clock
        # runs up to _MAX_FUTURE seconds behind ours as well: else it would take the replay there.
        expires_at = max(verified.iat, now) + self._max_age + _MAX_FUTURE + 1
        if not await self._replay.remember(proof_hash(verified.jkt, verified.jti), expires_at):
            raise InvalidDpopProof("the DPoP proof was already used")
        return verified

    def nonce(self) -> str:
        return self._nonces.current(self._clock.now())

    def response_headers(self) -> Mapping[str, str]:
        """What every answer to a DPoP request carries: a fresh nonce, when nonces are on."""
        return {"dpop-nonce": self.nonce()} if self.require_nonce else {}


class TokenEndpointDpop:
    """The token endpoint's DPoP step, run after client authentication and before the grant."""

    def __init__(self, checker: DpopChecker, token_url: str) -> None:
        self.checker = checker
        self._token_url = token_url

    async def bind(self, request: ProtocolRequest, client: Client) -> ProtocolRequest:
        """The request with its verified key (``dpop_jkt``), or unchanged without a proof."""
        proof = request.header("dpop")
        if proof is None:
            if client.dpop_bound_access_tokens:
                # RFC 9449 §5.2: such a client's token requests are refused without a proof.
                raise InvalidDpopProof("this client must send a DPoP proof")
            return request
        verified = await self.checker.check(proof, method=request.method, url=self._token_url)
        return request.with_dpop_key(verified.jkt)


class DpopBinding(ResponseHook):
    """Binds the access token to the request's verified key (RFC 9449 §5, §6.1)."""

    def context(self, request: ProtocolRequest, ctx: TokenContext) -> TokenContext:
        if request.dpop_jkt is None:
            return ctx
        claims = {**ctx.claims, "cnf": {"jkt": request.dpop_jkt}}
        return replace(ctx, claims=claims, token_type="DPoP")
