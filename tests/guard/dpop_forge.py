"""DPoP proofs for the guard and gateway tests: good ones from the client primitive
(``jose/dpop.py: make_proof``) and hostile ones signed here with PyJWT or by hand."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import jwt as pyjwt

from tests.guard.forge import DROP, b64, seg
from tokensmith.jose.dpop import access_token_hash, generate_proof_key, jwk_thumbprint, public_jwk

__all__ = ["PUBLIC", "ProofKey", "bad_proofs", "hostile", "hs256_proof"]

# What the tests' guards and gateways are reached at (as behind a proxy): proofs name this
# origin, never the loopback address the test connects to.
PUBLIC = "https://api.test"


class ProofKey:
    """A client's DPoP key: its private JWK, its thumbprint (the token's ``cnf.jkt``)."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        self.private = generate_proof_key(alg)
        self.public = public_jwk(self.private)
        self.jkt = jwk_thumbprint(self.public)

    def proof(
        self,
        method: str,
        url: str,
        token: str | None,
        *,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A proof signed by this key; ``header`` and ``claims`` override (DROP removes)."""
        body: dict[str, Any] = {
            "jti": secrets.token_urlsafe(12),
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
        }
        if token is not None:
            body["ath"] = access_token_hash(token)
        body |= claims
        head = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.public, **(header or {})}
        body = {k: v for k, v in body.items() if v is not DROP}
        head = {k: v for k, v in head.items() if v is not DROP}
        signer = pyjwt.algorithms.ECAlgorithm.from_jwk(json.dumps(self.private))
        return pyjwt.encode(body, signer, algorithm="ES256", headers=head)


def hostile(head: dict[str, Any], body: dict[str, Any], signature: bytes = b"") -> str:
    """A proof with any header and signature: ``none``, or a MAC, made by hand."""
    return f"{seg(head)}.{seg(body)}.{b64(signature)}"


def hs256_proof(key: ProofKey, url: str, token: str) -> str:
    """HS256 with the public JWK's ``x`` as the secret: a MAC must never pass as a proof."""
    import hashlib
    import hmac

    head = {"typ": "dpop+jwt", "alg": "HS256", "jwk": key.public}
    body = {
        "jti": secrets.token_urlsafe(12),
        "htm": "GET",
        "htu": url,
        "iat": int(time.time()),
        "ath": access_token_hash(token),
    }
    signing_input = f"{seg(head)}.{seg(body)}".encode()
    mac = hmac.new(key.public["x"].encode(), signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{b64(mac)}"


def bad_proofs(key: ProofKey, other: ProofKey, url: str, token: str) -> dict[str, str]:
    """Every way a proof for ``GET url`` with ``token`` can be wrong (RFC 9449 §4.3, §11)."""
    now = int(time.time())
    private_in_header = dict(key.private)
    return {
        "wrong_htm": key.proof("POST", url, token),
        "wrong_htu": key.proof("GET", "https://other.test/orders", token),
        "wrong_path": key.proof("GET", url + "/elsewhere", token),
        "stale_iat": key.proof("GET", url, token, iat=now - 3600),
        "future_iat": key.proof("GET", url, token, iat=now + 600),
        "string_iat": key.proof("GET", url, token, iat=str(now)),
        "alg_none": hostile(
            {"typ": "dpop+jwt", "alg": "none", "jwk": key.public},
            {"jti": "n1", "htm": "GET", "htu": url, "iat": now, "ath": access_token_hash(token)},
        ),
        "alg_hs256": hs256_proof(key, url, token),
        "private_jwk": key.proof("GET", url, token, header={"jwk": private_in_header}),
        "no_jwk": key.proof("GET", url, token, header={"jwk": DROP}),
        "wrong_typ": key.proof("GET", url, token, header={"typ": "JWT"}),
        "missing_ath": key.proof("GET", url, None),
        "wrong_ath": key.proof("GET", url, token, ath=access_token_hash(token + "x")),
        "no_jti": key.proof("GET", url, token, jti=DROP),
        "bad_signature": key.proof("GET", url, token)[:-4] + "AAAA",
        "not_a_jws": "not.a-proof",
        "oversized": "a" * 9000,
        "other_key": other.proof("GET", url, token),
    }
