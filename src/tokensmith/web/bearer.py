"""Bearer tokens (RFC 6750) for this server's own resources: userinfo and the admin API.

The token comes from the Authorization header only, never from a query or a body, and errors are
RFC 6750 challenges with a JSON body. A DPoP-bound token (``cnf.jkt``) is accepted only as
``Authorization: DPoP`` with one valid proof by its key for this request (RFC 9449 §7): the
proof's ``htu`` is checked against the issuer's URL for the path, not the Host header.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.challenges import render_challenge
from tokensmith.core.secrets import constant_time_equals
from tokensmith.errors import InvalidDpopProof, OAuthError, UseDpopNonce
from tokensmith.jose.dpop import DPOP_ALGORITHMS
from tokensmith.oauth.tokens import IssuedToken
from tokensmith.web.responses import json_response
from tokensmith.web.state import protocol_of, services_of

__all__ = [
    "BearerRefused",
    "DpopRefused",
    "actor_of",
    "bearer_error",
    "bearer_token",
    "bound_key",
    "require_bearer",
]

_MAX_TOKEN = 8192
_REALM = "tokensmith"


class BearerRefused(OAuthError):
    """An RFC 6750 refusal; ``code`` is missing_credential, invalid_request, invalid_token or
    insufficient_scope (its status comes from ``ERROR_CODES``), ``scope`` the scope it lacks."""

    def __init__(self, code: str, description: str, scope: str | None = None) -> None:
        super().__init__(description, code=code)
        self.scope = scope

    def challenge(self) -> str:
        # RFC 6750 §3: the challenge names the error; with no credentials at all, only the realm.
        if self.code == "missing_credential":
            return render_challenge("Bearer", realm=_REALM)
        return render_challenge(
            "Bearer",
            realm=_REALM,
            error=self.error,
            error_description=self.description,
            scope=self.scope,
        )

    def response(self) -> Response:
        body = {"error": self.error, "error_description": self.description}
        headers = {"www-authenticate": self.challenge(), "cache-control": "no-store"}
        return json_response(body, self.status, headers)


class DpopRefused(BearerRefused):
    """A 401 with a DPoP challenge (RFC 9449 §7.1, §9): ``dpop_error`` is invalid_token,
    invalid_dpop_proof or use_dpop_nonce; ``nonce`` goes out as ``DPoP-Nonce``."""

    def __init__(self, dpop_error: str, description: str, nonce: str | None = None) -> None:
        super().__init__("invalid_token", description)
        self.dpop_error = dpop_error
        self.nonce = nonce

    def challenge(self) -> str:
        return render_challenge(
            "DPoP",
            realm=_REALM,
            error=self.dpop_error,
            error_description=self.description,
            algs=" ".join(DPOP_ALGORITHMS),
        )

    def response(self) -> Response:
        body = {"error": self.dpop_error, "error_description": self.description}
        headers = {"www-authenticate": self.challenge(), "cache-control": "no-store"}
        if self.nonce is not None:
            headers["dpop-nonce"] = self.nonce
        return json_response(body, self.status, headers)


def bearer_error(code: str, description: str, scope: str | None = None) -> Response:
    return BearerRefused(code, description, scope).response()


async def bearer_token(request: Request) -> IssuedToken:
    """The record of the request's valid access token, whatever its audience or scope."""
    sent = request.headers.getlist("authorization")
    if len(sent) > 1:
        # RFC 6750 §3.1: one token per request; a proxy in front may have judged the other one.
        raise BearerRefused("invalid_request", "send the Authorization header only once")
    scheme, _, token = (sent[0] if sent else "").partition(" ")
    token, dpop = token.strip(), scheme.lower() == "dpop"
    if scheme.lower() not in ("bearer", "dpop") or not token:
        raise BearerRefused("missing_credential", "send the access token as Authorization: Bearer")
    inspector = protocol_of(request).inspector
    record = None if len(token) > _MAX_TOKEN else await inspector.active_token(token)
    if record is None:
        raise BearerRefused("invalid_token", "the access token is invalid, expired or revoked")
    await _check_binding(request, record, token, dpop=dpop)
    return record


def bound_key(record: IssuedToken) -> str | None:
    """The thumbprint a token is DPoP-bound to (``cnf.jkt``), if it is."""
    cnf = (record.claims or {}).get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) else None


async def _check_binding(request: Request, record: IssuedToken, token: str, *, dpop: bool) -> None:
    jkt = bound_key(record)
    if jkt is None:
        if dpop:
            raise DpopRefused("invalid_token", "the access token is not DPoP-bound")
        return
    if not dpop:
        # RFC 9449 §7.1: a bound token is no bearer token; whoever stole it lacks the key.
        raise DpopRefused("invalid_token", "the access token is DPoP-bound: send it as DPoP")
    proofs = request.headers.getlist("dpop")
    if len(proofs) != 1:
        raise DpopRefused("invalid_dpop_proof", "send exactly one DPoP header")
    url = services_of(request).settings.issuer + request.url.path
    try:
        verified = await protocol_of(request).dpop.check(
            proofs[0], method=request.method, url=url, access_token=token
        )
    except UseDpopNonce as needed:
        raise DpopRefused("use_dpop_nonce", needed.description, needed.nonce) from None
    except InvalidDpopProof as refused:
        raise DpopRefused("invalid_dpop_proof", refused.description) from None
    if not constant_time_equals(verified.jkt, jkt):
        raise DpopRefused("invalid_dpop_proof", "the proof is not by the key the token is bound to")


async def require_bearer(request: Request, scope: str) -> IssuedToken:
    """A valid access token meant for this server (its audience) that carries ``scope``."""
    record = await bearer_token(request)
    settings = services_of(request).settings
    audiences = set(record.audience.split())
    if not audiences & {settings.issuer, settings.audience}:
        raise BearerRefused("invalid_token", "the access token is not meant for this server")
    if scope not in record.scope.split():
        raise BearerRefused("insufficient_scope", f"the {scope} scope is required", scope)
    return record


def actor_of(record: IssuedToken) -> str:
    """Who acts with a token: the client itself, or a user through it."""
    if record.subject == record.client_id:
        return f"client:{record.client_id}"
    return f"user:{record.subject} (client:{record.client_id})"
