"""The authorization request (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1, OIDC Core §3.1.2.1).

Validation runs in two stages. Until the client and its redirect URI are known to be genuine,
every error is shown on our own page (RFC 9700 §4.1.1: never redirect to an unverified URI). After
that, errors go back to the client's registered URI with ``state`` and ``iss`` (RFC 9207).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from tokensmith.accounts.sessions import Session
from tokensmith.core.scopes import format_scope
from tokensmith.core.secrets import keyed_hash, random_token
from tokensmith.errors import (
    InvalidRequest,
    OAuthError,
    PageError,
    RedirectError,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from tokensmith.oauth import pkce
from tokensmith.oauth.clients import Client, ClientStore
from tokensmith.oauth.grants import MAX_CODE_LIFETIME, AuthorizationCode, CodeStore
from tokensmith.oauth.params import Params
from tokensmith.oauth.redirects import matches_registered
from tokensmith.oauth.scopes import narrow_scope

__all__ = [
    "AuthorizationRequest",
    "PageError",
    "RedirectError",
    "error_redirect",
    "issue_code",
    "success_redirect",
    "validate_authorization_request",
]

PROMPTS = frozenset({"none", "login", "consent"})
CODE_PREFIX = "tsac_"
_THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    code_challenge: str
    nonce: str | None = None
    prompt: str | None = None
    max_age: int | None = None
    resource: tuple[str, ...] = ()
    dpop_jkt: str | None = None  # RFC 9449 §10: the key the code's tokens must be bound to

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["resource"] = list(self.resource)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuthorizationRequest:
        return cls(**{**data, "resource": tuple(data.get("resource", ()))})

    @property
    def prompts(self) -> frozenset[str]:
        return frozenset((self.prompt or "").split())


async def validate_authorization_request(
    params: Params, clients: ClientStore
) -> tuple[Client, AuthorizationRequest]:
    client_id = params.get("client_id")
    if client_id is None:
        raise PageError("Missing client", "The request does not say which application it is for.")
    client = await clients.get(client_id)
    if client is None:
        raise PageError("Unknown application", "No application with that client_id is registered.")
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is None or not redirect_uri_matches(client, redirect_uri):
        raise PageError(
            "Invalid redirect address",
            "The address this request asks to return to is not registered for the application.",
        )
    state = params.get("state")
    partial = AuthorizationRequest(client_id, redirect_uri, "", state, "")
    try:
        request = _validate_rest(params, client, partial)
    except OAuthError as error:
        raise RedirectError(error, redirect_uri, state) from None
    return client, request


def _validate_rest(
    params: Params, client: Client, partial: AuthorizationRequest
) -> AuthorizationRequest:
    response_type = params.get("response_type")
    if response_type != "code":
        # OAuth 2.1 removed the implicit and hybrid flows; only "code" exists here.
        raise UnsupportedResponseType("response_type must be code")
    if "request" in params or "request_uri" in params:
        raise InvalidRequest("request objects are not supported")
    if "authorization_code" not in client.grant_types:
        raise UnauthorizedClient("this client may not use the authorization code flow")
    challenge = pkce.validate_challenge(
        params.get("code_challenge"), params.get("code_challenge_method")
    )
    scope = narrow_scope(params.get("scope"), client.scopes)
    prompt = params.get("prompt")
    if prompt is not None:
        prompts = set(prompt.split(" "))
        if not prompts <= PROMPTS or ("none" in prompts and len(prompts) > 1):
            raise InvalidRequest("prompt is none, login or consent")
    max_age = params.get("max_age")
    # ASCII digits only: str.isdigit() is also true of "²", which int() refuses (a 500).
    if max_age is not None and not (max_age.isascii() and max_age.isdigit() and len(max_age) <= 9):
        raise InvalidRequest("max_age is a number of seconds")
    return AuthorizationRequest(
        client_id=partial.client_id,
        redirect_uri=partial.redirect_uri,
        scope=format_scope(scope),
        state=partial.state,
        code_challenge=challenge,
        nonce=params.get("nonce"),
        prompt=prompt,
        max_age=int(max_age) if max_age is not None else None,
        resource=params.all("resource"),
        dpop_jkt=_dpop_jkt(params.get("dpop_jkt")),
    )


def _dpop_jkt(value: str | None) -> str | None:
    """RFC 9449 §10: a JWK SHA-256 thumbprint, base64url (43 characters)."""
    if value is not None and not _THUMBPRINT.fullmatch(value):
        raise InvalidRequest("dpop_jkt is a base64url SHA-256 JWK thumbprint")
    return value


def redirect_uri_matches(client: Client, presented: str) -> bool:
    """Exact after strict parsing (RFC 9700 §4.1.3); a loopback IP's port may vary (RFC 8252)."""
    return matches_registered(presented, client.redirect_uris)


async def issue_code(
    codes: CodeStore,
    pepper: bytes,
    now: int,
    request: AuthorizationRequest,
    user_id: str,
    session: Session,
) -> str:
    """A single-use code, valid for at most 60 s, stored only as its keyed hash."""
    value = random_token(32, CODE_PREFIX)
    await codes.add(
        AuthorizationCode(
            code_hash=keyed_hash(pepper, value),
            client_id=request.client_id,
            user_id=user_id,
            redirect_uri=request.redirect_uri,
            scope=request.scope,
            code_challenge=request.code_challenge,
            created_at=now,
            expires_at=now + MAX_CODE_LIFETIME,
            nonce=request.nonce,
            auth_time=session.auth_time,
            session_id=session.session_ref,
            resource=" ".join(request.resource) or None,
            dpop_jkt=request.dpop_jkt,
        )
    )
    return value


def success_redirect(request: AuthorizationRequest, issuer: str, code: str) -> str:
    return _append(request.redirect_uri, {"code": code, "state": request.state, "iss": issuer})


def error_redirect(refusal: RedirectError, issuer: str) -> str:
    """Where RFC 6749 §4.1.2.1 sends an error: the verified redirect URI, with state and iss."""
    params = {
        "error": refusal.error.error,
        "error_description": refusal.error.description or None,
        "state": refusal.state,
        "iss": issuer,
    }
    return _append(refusal.redirect_uri, params)


def _append(uri: str, params: dict[str, str | None]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    separator = "&" if urlsplit(uri).query else "?"
    return f"{uri}{separator}{query}"
