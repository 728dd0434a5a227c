"""The admin HTTP API (API keys, clients, audit), for access tokens with ``tokensmith:admin``.

    GET  /admin/api-keys[?owner=O]            list (never a key or its hash)
    POST /admin/api-keys                      create: {"name", "scope", "owner"?, "expires_in"?,
                                              "allowed_cidrs"?, "rate_limit"?, "audiences"?};
                                              the key, once
    GET  /admin/api-keys/{key_id}             one key
    POST /admin/api-keys/{key_id}/rotate      {"grace"?, "expires_in"?}; the new key, once
    POST /admin/api-keys/{key_id}/revoke      revoke now
    DELETE /admin/clients/{client_id}         delete a client and revoke its tokens, refresh
                                              tokens and codes (oauth/client_removal.py)
    GET  /admin/audit?since=1h&client_id=&subject=&event=&limit=
                                              audit events, newest first
    POST /admin/lockouts/clear                {"account"?, "client"?, "address"?, "key"?}: unlock

Durations are seconds or strings such as ``"30d"``. Errors are RFC 6749-style JSON.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.apikeys.lifecycle import IssuedApiKey, NewApiKey, describe
from tokensmith.audit.events import AuditEvent, AuditQuery
from tokensmith.core.durations import parse_duration
from tokensmith.core.lockouts import UNLOCKABLE
from tokensmith.errors import InvalidRequest, NotFound, OAuthError
from tokensmith.oauth.client_removal import delete_client as remove_client
from tokensmith.oauth.tokens import IssuedToken
from tokensmith.web.bearer import BearerRefused, actor_of, require_bearer
from tokensmith.web.forms import has_body, read_json
from tokensmith.web.responses import error_response, json_response
from tokensmith.web.state import services_of

__all__ = [
    "ADMIN_SCOPE",
    "audit_events",
    "clear_lockouts",
    "create_key",
    "delete_client",
    "list_keys",
    "revoke_key",
    "rotate_key",
    "show_key",
]

ADMIN_SCOPE = "tokensmith:admin"
_NO_STORE = {"cache-control": "no-store"}


async def list_keys(request: Request) -> Response:
    async def action(admin: IssuedToken) -> Response:
        services = services_of(request)
        owner = request.query_params.get("owner")
        records = await services.key_manager.list_keys(owner)
        now = services.clock.now()
        return json_response({"keys": [describe(r, now) for r in records]}, headers=_NO_STORE)

    return await _as_admin(request, action)


async def create_key(request: Request) -> Response:
    async def action(admin: IssuedToken) -> Response:
        services = services_of(request)
        body = _object(await read_json(request, services.settings.max_body_bytes))
        new = NewApiKey(
            name=_text(body, "name", required=True) or "",
            owner=_text(body, "owner") or actor_of(admin),
            scope=_scope(body),
            expires_in=_duration(body, "expires_in"),
            allowed_cidrs=tuple(_texts(body, "allowed_cidrs")),
            rate_limit=_integer(body, "rate_limit"),
            audiences=tuple(_texts(body, "audiences")),
        )
        issued = await services.key_manager.create(new, actor_of(admin))
        return _issued(issued, services.clock.now())

    return await _as_admin(request, action)


async def show_key(request: Request) -> Response:
    async def action(admin: IssuedToken) -> Response:
        services = services_of(request)
        record = await services.key_manager.get(request.path_params["key_id"])
        return json_response(describe(record, services.clock.now()), headers=_NO_STORE)

    return await _as_admin(request, action)


async def rotate_key(request: Request) -> Response:
    async def action(admin: IssuedToken) -> Response:
        services = services_of(request)
        body = await _optional_body(request)
        issued = await services.key_manager.rotate(
            request.path_params["key_id"],
            actor_of(admin),
            grace=_duration(body, "grace") or 0,
            expires_in=_duration(body, "expires_in"),
        )
        return _issued(issued, services.clock.now())

    return await _as_admin(request, action)


async def revoke_key(request: Request) -> Response:
    async def action(admin: IssuedToken) -> Response:
        services = services_of(request)
        record = await services.key_manager.revoke(request.path_params["key_id"], actor_of(admin))
        return json_response(describe(record, services.clock.now()), headers=_NO_STORE)

    return await _as_admin(request, action)


async def delete_client(request: Request) -> Response:
    async def action(admin: IssuedToken) -> Response:
        services = services_of(request)
        client_id = request.path_params["client_id"]
        removal = await remove_client(services, client_id, services.clock.now())
        if not removal.deleted:
            raise NotFound("no such client")
        await services.trail.write(
            AuditEvent(
                at=services.clock.now(),
                event="client.deleted",
                outcome="success",
                actor=actor_of(admin),
                client_id=client_id,
                detail=removal.detail(),
            )
        )
        body = {"client_id": client_id, "deleted": True, **removal.detail()}
        return json_response(body, headers=_NO_STORE)

    return await _as_admin(request, action)


async def audit_events(request: Request) -> Response:
    async def action(admin: IssuedToken) -> Response:
        services = services_of(request)
        query = request.query_params
        window = _duration(dict(query), "since")
        try:
            limit = int(query.get("limit", "100"))
        except ValueError:
            raise InvalidRequest("limit must be a whole number") from None
        await services.trail.flush()
        events = await services.audit.query(
            AuditQuery(
                since=services.clock.now() - window if window is not None else None,
                client_id=query.get("client_id"),
                subject=query.get("subject"),
                event=query.get("event"),
                limit=max(1, min(limit, 1000)),
            )
        )
        body = {"events": [dataclasses.asdict(e) for e in events]}
        return json_response(body, headers=_NO_STORE)

    return await _as_admin(request, action)


async def clear_lockouts(request: Request) -> Response:
    async def action(admin: IssuedToken) -> Response:
        services = services_of(request)
        body = _object(await read_json(request, services.settings.max_body_bytes))
        names = {kind: _text(body, kind) for kind in UNLOCKABLE}
        if not any(names.values()):
            raise InvalidRequest("name an account, a client, an address or a key to unlock")
        cleared = await services.limits.unlock(names)
        await services.trail.write(
            AuditEvent(
                at=services.clock.now(),
                event="lockout.cleared",
                outcome="success",
                actor=actor_of(admin),
                detail=cleared,
            )
        )
        return json_response({"cleared": cleared}, headers=_NO_STORE)

    return await _as_admin(request, action)


async def _as_admin(request: Request, action: Any) -> Response:
    try:
        admin = await require_bearer(request, ADMIN_SCOPE)
    except BearerRefused as refused:
        return refused.response()
    try:
        response: Response = await action(admin)
    except OAuthError as error:
        return error_response(error, _NO_STORE)
    return response


def _issued(issued: IssuedApiKey, now: int) -> Response:
    body = {"key": issued.key, **describe(issued.record, now)}
    return json_response(body, 201, _NO_STORE)


async def _optional_body(request: Request) -> dict[str, Any]:
    if not has_body(request):
        return {}
    return _object(await read_json(request, services_of(request).settings.max_body_bytes))


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string")
    return value


def _texts(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"{name} must be a list of strings")
    return value


def _scope(body: dict[str, Any]) -> str:
    value = body.get("scope")
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return " ".join(value)
    if not isinstance(value, str):
        raise InvalidRequest('scope must be a string such as "orders:read orders:write"')
    return value


def _integer(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequest(f"{name} must be an integer")
    return value


def _duration(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidRequest(f"{name} must be seconds or a duration such as 30d")
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise InvalidRequest(f"{name}: {exc}") from None
