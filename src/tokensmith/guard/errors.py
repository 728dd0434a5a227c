"""The refusals a resource server sends, rendered the RFC 6750 §3 way.

Every refusal carries an HTTP status, an error code, and a description that is safe to send: it
says *why* (expired, wrong audience, missing scope) but never echoes the credential. A refusal is
an ``OAuthError`` of the one hierarchy (``tokensmith.errors``): its ``code`` names the row of
``ERROR_CODES`` that gives its status, and its challenge comes from the one renderer
(``tokensmith.core.challenges``).

Where the guard accepts DPoP (RFC 9449 §7.1), the guard marks each refusal with the algorithms
it takes (``dpop_algs``) and the scheme the credential came in (``scheme``): the challenge then
names both schemes, the error in the one that was used, and ``algs`` in the DPoP one.
"""

from __future__ import annotations

import json

from tokensmith.core.challenges import join_challenges, render_challenge
from tokensmith.errors import OAuthError

__all__ = [
    "DpopNonceRequired",
    "DpopProofRefused",
    "ForbiddenSource",
    "GuardError",
    "InsufficientScope",
    "InvalidRequest",
    "InvalidToken",
    "MissingCredential",
    "RateLimited",
    "ServiceUnavailable",
    "TokenExpired",
    "UnknownKeyId",
    "render",
]


class GuardError(OAuthError):
    """A refusal; ``description`` is public, ``detail`` is for the log only."""

    code = "invalid_token"
    # The scheme whose challenge carries the error, and the DPoP algorithms the guard takes
    # (none: DPoP is not offered, and only Bearer is challenged). Set by the guard.
    scheme = "Bearer"
    dpop_algs: tuple[str, ...] = ()

    def __init__(self, description: str, *, detail: str = "") -> None:
        super().__init__(description, detail=detail)

    def challenge(self, realm: str) -> str | None:
        """The ``WWW-Authenticate`` value, or None when the status needs none."""
        return self.challenges(realm, error=self.error, error_description=self.description)

    def challenges(self, realm: str, **params: str | None) -> str:
        """``params`` in the challenge of ``scheme``; a bare one for the other scheme offered."""
        algs = " ".join(self.dpop_algs) or None
        if self.scheme == "DPoP":
            first = render_challenge("DPoP", realm=realm, **params, algs=algs)
            return join_challenges(first, render_challenge("Bearer", realm=realm))
        first = render_challenge("Bearer", realm=realm, **params)
        if algs is None:
            return first
        return join_challenges(first, render_challenge("DPoP", realm=realm, algs=algs))

    def extra_headers(self) -> list[tuple[str, str]]:
        return []


class MissingCredential(GuardError):
    """RFC 6750 §3.1: a request with no credential gets a bare challenge and no error code."""

    def challenge(self, realm: str) -> str | None:
        return self.challenges(realm)


class InvalidToken(GuardError):
    code = "invalid_token"


class TokenExpired(InvalidToken):
    """Kept apart so a client can tell "refresh and retry" from "this will never work"."""


class UnknownKeyId(InvalidToken):
    """The signing key is not in our JWKS copy; the caller may refresh the JWKS once and retry."""


class InsufficientScope(GuardError):
    code = "insufficient_scope"

    def __init__(self, needed: frozenset[str] | tuple[str, ...]) -> None:
        self.scope = " ".join(sorted(needed))
        super().__init__(f"this request needs the scope: {self.scope}")

    def challenge(self, realm: str) -> str | None:
        return self.challenges(
            realm, error=self.error, error_description=self.description, scope=self.scope
        )


class DpopProofRefused(GuardError):
    """RFC 9449 §7.1: the ``DPoP`` proof is missing, malformed, or not for this request."""

    code = "resource_invalid_dpop_proof"
    scheme = "DPoP"


class DpopNonceRequired(GuardError):
    """RFC 9449 §9: the proof must carry the nonce sent in ``DPoP-Nonce``; retry with it."""

    code = "resource_use_dpop_nonce"
    scheme = "DPoP"

    def __init__(self, description: str, *, nonce: str) -> None:
        super().__init__(description)
        self.nonce = nonce

    def extra_headers(self) -> list[tuple[str, str]]:
        return [("dpop-nonce", self.nonce)]


class InvalidRequest(GuardError):
    code = "invalid_request"


class ForbiddenSource(GuardError):
    code = "forbidden_source"

    def challenge(self, realm: str) -> str | None:
        return None


class RateLimited(GuardError):
    code = "rate_limited"

    def __init__(self, description: str, *, retry_after: int) -> None:
        super().__init__(description)
        self.retry_after = max(1, retry_after)

    def challenge(self, realm: str) -> str | None:
        return None

    def extra_headers(self) -> list[tuple[str, str]]:
        return [("retry-after", str(self.retry_after))]


class ServiceUnavailable(GuardError):
    """We could not find out whether the credential is good, so it is refused (fail closed)."""

    code = "temporarily_unavailable"

    def challenge(self, realm: str) -> str | None:
        return None

    def extra_headers(self) -> list[tuple[str, str]]:
        return [("retry-after", "1")]


def render(error: GuardError, realm: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and JSON body of a refusal, for every adapter to send as it is."""
    body: dict[str, str] = {"error_description": error.description}
    if not isinstance(error, MissingCredential):
        body = {"error": error.error, **body}
    if isinstance(error, InsufficientScope):
        body["scope"] = error.scope
    headers = [
        ("content-type", "application/json"),
        ("cache-control", "no-store"),
        *error.extra_headers(),
    ]
    challenge = error.challenge(realm)
    if challenge is not None:
        headers.append(("www-authenticate", challenge))
    return error.status, headers, json.dumps(body).encode()
