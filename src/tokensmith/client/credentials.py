"""A machine client's own tokens: the client credentials grant (RFC 6749 §4.4), authenticated
by ``client_secret_basic`` (§2.3.1), ``client_secret_post`` or ``private_key_jwt`` (RFC 7523
§2.2, OIDC Core §9).

The client assertion's ``aud`` is the issuer identifier: RFC 7523 allows the token endpoint too,
but the audience-injection findings of 2025 (draft-ietf-oauth-rfc7523bis) made the issuer the
one value a server should accept, and Tokensmith accepts only it. Each assertion lives 60 s and
carries a fresh ``jti`` (the server refuses replays).

With ``dpop`` the client's tokens are bound to a key of this object (RFC 9449): made at start,
held in memory only, like the tokens it binds. ``for_issuer`` turns it on when the issuer's
metadata lists DPoP algorithms, unless ``dpop=False``.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any, Literal
from urllib.parse import quote_plus

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from tokensmith.client.bearer import BearerAuth
from tokensmith.client.discovery import ServerMetadata, check_url, discover
from tokensmith.client.dpop import DpopKey, choose_dpop
from tokensmith.client.tokens import AccessToken, SingleFlight, post_form, token_from_response
from tokensmith.core.clock import Clock, SystemClock

__all__ = [
    "ASSERTION_TYPE",
    "ClientAuthMethod",
    "ClientCredentialsAuth",
    "client_assertion",
    "client_secret_basic",
]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ClientAuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt"]
PrivateKey = ECKey | RSAKey | OKPKey
_ASSERTION_LIFETIME = 60
_KEY_ALGS = {"EC": "ES256", "RSA": "RS256", "OKP": "Ed25519"}


def client_assertion(
    key: PrivateKey, client_id: str, audience: str, now: int, *, alg: str | None = None
) -> str:
    """A signed ``private_key_jwt`` assertion (RFC 7523 §3)."""
    alg = alg or _KEY_ALGS[key.key_type]
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + _ASSERTION_LIFETIME,
        "jti": secrets.token_urlsafe(24),
    }
    header = {"alg": alg, "typ": "JWT", "kid": key.kid or key.thumbprint()}
    return jwt.encode(header, claims, key, algorithms=[alg])


def client_secret_basic(client_id: str, secret: str) -> dict[str, str]:
    """The ``authorization`` header of ``client_secret_basic``: each part form-encoded before
    Basic (RFC 6749 §2.3.1), so a ``:`` in the client id cannot split it."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return {"authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


class ClientCredentialsAuth(BearerAuth):
    """``httpx.Auth`` for a confidential client acting as itself.

    >>> auth = ClientCredentialsAuth.for_issuer("https://auth.example", "id", client_secret="s")
    >>> httpx.get("https://api.example/orders", auth=auth)  # doctest: +SKIP
    """

    def __init__(
        self,
        token_endpoint: str,
        client_id: str,
        *,
        client_secret: str | None = None,
        private_key: PrivateKey | None = None,
        method: ClientAuthMethod | None = None,
        scope: str | None = None,
        resource: str | None = None,
        issuer: str | None = None,
        http: httpx.Client | None = None,
        clock: Clock | None = None,
        dpop: bool | DpopKey | None = None,
    ) -> None:
        self.token_endpoint = check_url(token_endpoint, "the token endpoint")
        self.client_id = client_id
        self.method: ClientAuthMethod = method or (
            "private_key_jwt" if private_key is not None else "client_secret_basic"
        )
        if self.method == "private_key_jwt" and private_key is None:
            raise ValueError("private_key_jwt needs a private_key")
        if self.method != "private_key_jwt" and not client_secret:
            raise ValueError(f"{self.method} needs a client_secret")
        self._secret = client_secret
        self._key = private_key
        self.scope, self.resource = scope, resource
        self.audience = issuer or token_endpoint
        self._own_http = http is None
        self._http = http or httpx.Client(timeout=10)
        self._clock = clock or SystemClock()
        key = DpopKey.generate(clock=self._clock) if dpop is True else dpop or None
        super().__init__(SingleFlight(self._fetch, self._clock), key)

    @classmethod
    def for_issuer(
        cls, issuer: str, client_id: str, *, http: httpx.Client | None = None, **options: Any
    ) -> ClientCredentialsAuth:
        """Discover the issuer's token endpoint first (``discovery.py``)."""
        metadata: ServerMetadata = discover(issuer, http=http)
        dpop = options.pop("dpop", None)
        if dpop is None or dpop is True:
            dpop = choose_dpop(metadata, dpop, clock=options.get("clock")) or False
        return cls(
            metadata.token_endpoint,
            client_id,
            issuer=metadata.issuer,
            http=http,
            dpop=dpop,
            **options,
        )

    def _fetch(self) -> AccessToken:
        now = self._clock.now()
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        if self.resource:
            form["resource"] = self.resource
        headers: dict[str, str] = {}
        if self.method == "client_secret_basic":
            assert self._secret is not None
            headers = client_secret_basic(self.client_id, self._secret)
        elif self.method == "client_secret_post":
            assert self._secret is not None
            form |= {"client_id": self.client_id, "client_secret": self._secret}
        else:
            assert self._key is not None
            form |= {
                "client_id": self.client_id,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(self._key, self.client_id, self.audience, now),
            }
        body = post_form(self._http, self.token_endpoint, form, headers=headers, dpop=self.dpop)
        return token_from_response(body, now, dpop=self.dpop is not None)

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    def __enter__(self) -> ClientCredentialsAuth:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
