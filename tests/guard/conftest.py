"""Three protected apps (pure ASGI middleware, FastAPI dependency, Flask decorator), one guard
configuration, and an issuer JWKS served by a stub HTTP server the tests control."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI

from tests.guard.forge import AUDIENCE, ISSUER, new_key
from tests.guard.servers import StubServer, asgi_server, wsgi_server
from tokensmith.guard import Guard, Principal
from tokensmith.guard.asgi import GuardMiddleware, principal_of
from tokensmith.guard.fastapi import install_guard, require_scopes
from tokensmith.jose.keys import SigningKey

ADAPTERS = ["asgi", "fastapi", "flask"]


@dataclass
class Keys:
    es: SigningKey
    rs: SigningKey
    ed: SigningKey
    rogue: SigningKey  # not in the JWKS: the attacker's own


@dataclass
class Protected:
    adapter: str
    base_url: str
    guard: Guard


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(new_key("ES256"), new_key("RS256"), new_key("Ed25519"), new_key("ES256"))


@pytest.fixture(scope="module")
def issuer(keys: Keys) -> Iterator[StubServer]:
    with StubServer() as stub:
        jwks = {"keys": [k.public_jwk() for k in (keys.es, keys.rs, keys.ed)]}
        stub.routes["/jwks"] = (200, {}, jwks)
        stub.routes["/attacker-jwks"] = (200, {}, {"keys": [keys.rogue.public_jwk()]})
        yield stub


def make_guard(issuer: StubServer) -> Guard:
    # A long cool-down: the unknown-kid test counts fetches without depending on time.
    return Guard.for_issuer(
        ISSUER, audience=AUDIENCE, jwks_uri=issuer.base_url + "/jwks", unknown_kid_cooldown=3600
    )


def _describe(principal: Principal) -> dict[str, Any]:
    return {"sub": principal.subject, "scope": principal.scope, "kind": principal.kind}


def asgi_app(guard: Guard) -> Any:
    async def inner(scope: Any, receive: Any, send: Any) -> None:
        body = json.dumps(_describe(principal_of(scope))).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    routes = {
        "/orders": GuardMiddleware(inner, guard, scopes=["orders:read"]),
        "/admin": GuardMiddleware(inner, guard, scopes=["orders:admin"]),
    }

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await routes.get(scope["path"], routes["/orders"])(scope, receive, send)

    return app


def fastapi_app(guard: Guard) -> FastAPI:
    app = FastAPI()
    install_guard(app, guard)

    @app.get("/orders")
    async def orders(
        principal: Annotated[Principal, Depends(require_scopes("orders:read"))],
    ) -> Any:
        return _describe(principal)

    @app.get("/admin")
    async def admin(
        principal: Annotated[Principal, Depends(require_scopes("orders:admin"))],
    ) -> Any:
        return _describe(principal)

    return app


def flask_app(guard: Guard) -> Any:
    import flask

    from tokensmith.guard.flask import FlaskGuard

    app = flask.Flask("guarded")
    protect = FlaskGuard(guard)

    @app.get("/orders")
    @protect.require_scopes("orders:read")
    def orders(principal: Principal) -> Any:
        return _describe(principal)

    @app.get("/admin")
    @protect.require_scopes("orders:admin")
    def admin(principal: Principal) -> Any:
        return _describe(principal)

    return app


@pytest.fixture(scope="module", params=ADAPTERS)
def protected(request: pytest.FixtureRequest, issuer: StubServer) -> Iterator[Protected]:
    guard = make_guard(issuer)
    if request.param == "flask":
        with wsgi_server(flask_app(guard)) as base:
            yield Protected("flask", base, guard)
        return
    app = asgi_app(guard) if request.param == "asgi" else fastapi_app(guard)
    with asgi_server(app) as base:
        yield Protected(request.param, base, guard)
