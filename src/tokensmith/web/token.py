"""HTTP for the token, introspection (RFC 7662) and revocation (RFC 7009) endpoints."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.audit.events import AuditEvent, Outcome
from tokensmith.core.challenges import render_challenge
from tokensmith.core.secrets import fingerprint
from tokensmith.errors import InvalidClient, InvalidRequest, OAuthError
from tokensmith.oauth.client_auth import read_credentials
from tokensmith.oauth.params import Params
from tokensmith.web.client_auth import authenticate_client, claimed_client
from tokensmith.web.cors import allow_client_origin
from tokensmith.web.forms import read_form
from tokensmith.web.responses import error_response, json_response
from tokensmith.web.state import protocol_of, services_of

__all__ = ["introspect", "revoke", "token"]

# RFC 6749 §5.1: token responses MUST NOT be cached.
_NO_CACHE = {"cache-control": "no-store", "pragma": "no-cache"}
_BASIC_CHALLENGE = {
    "www-authenticate": render_challenge("Basic", realm="tokensmith", charset="UTF-8")
}


async def token(request: Request) -> Response:
    params: Params | None = None
    try:
        form = params = await _form(request)
        body = await protocol_of(request).token.handle(
            form, lambda: authenticate_client(request, form)
        )
        response = json_response(body, headers=_NO_CACHE)
    except OAuthError as error:
        _refused(request, "token.refused", error, params)
        response = _error(error)
    return await _with_cors(request, params, response)


async def revoke(request: Request) -> Response:
    params: Params | None = None
    try:
        params = await _form(request)
        client = await authenticate_client(request, params)
        value = _token_param(params)
        await protocol_of(request).inspector.revoke(value, client)
        _record(request, "token.revocation_requested", "success", client.client_id, value)
        response = Response(status_code=200, headers=_NO_CACHE)
    except OAuthError as error:
        _refused(request, "revocation.refused", error, params)
        response = _error(error)
    return await _with_cors(request, params, response)


async def _with_cors(request: Request, params: Params | None, response: Response) -> Response:
    """Browser apps may read the answer only from an origin their client registered."""
    origin = request.headers.get("origin")
    if origin is None or params is None:
        return response
    try:
        client_id = read_credentials(request.headers.get("authorization"), params).client_id
    except OAuthError:
        return response
    return await allow_client_origin(request, client_id, response)


async def introspect(request: Request) -> Response:
    params: Params | None = None
    try:
        params = await _form(request)
        client = await authenticate_client(request, params)
        if client.is_public:
            raise InvalidClient("introspection is for confidential clients")
        value = _token_param(params)
        body = await protocol_of(request).inspector.introspect(value, client)
    except OAuthError as error:
        _refused(request, "introspection.refused", error, params)
        return _error(error)
    active = bool(body.get("active"))
    _record(request, "token.introspected", "success", client.client_id, value, active=active)
    return json_response(body, headers=_NO_CACHE)


async def _form(request: Request) -> Params:
    return await read_form(request, services_of(request).settings.max_body_bytes)


def _token_param(params: Params) -> str:
    value = params.get("token")
    if value is None:
        raise InvalidRequest("token is required")
    return value


def _record(
    request: Request, event: str, outcome: Outcome, client_id: str, token: str, **detail: Any
) -> None:
    services_of(request).trail.record(
        AuditEvent(
            at=services_of(request).clock.now(),
            event=event,
            outcome=outcome,
            actor=f"client:{client_id}",
            client_id=client_id,
            fingerprint=fingerprint(token),
            detail=detail,
        )
    )


def _refused(request: Request, event: str, error: OAuthError, params: Params | None) -> None:
    """A refusal is an audit event; its private detail goes there, never to the client."""
    claimed = claimed_client(request, params)
    services_of(request).trail.record(
        AuditEvent(
            at=services_of(request).clock.now(),
            event=event,
            outcome="denied" if error.status in (401, 403) else "failure",
            client_id=claimed,
            detail={
                "error": error.error,
                "description": error.description,
                **({"detail": error.detail} if error.detail else {}),
                **({"grant_type": params.get("grant_type")} if params is not None else {}),
            },
        )
    )


def _error(error: OAuthError) -> Response:
    # RFC 6749 §5.2: a 401 invalid_client carries the challenge of the scheme the client may use.
    extra = _BASIC_CHALLENGE if isinstance(error, InvalidClient) else {}
    return error_response(error, {**_NO_CACHE, **extra})
