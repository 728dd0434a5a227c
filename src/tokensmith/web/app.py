"""The application: routes, the envelope around them, and the life cycle of the services."""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from tokensmith.adapters.logs import ACCESS_LOG, configure_logging
from tokensmith.audit.events import AuditEvent
from tokensmith.core.labels import LabelledChildren
from tokensmith.errors import InvalidRequest, MethodNotAllowed, NotFound, OAuthError
from tokensmith.oauth.capabilities import Capabilities
from tokensmith.runtime.features import enabled_features
from tokensmith.runtime.maintenance import start_background
from tokensmith.runtime.metrics import ANOMALIES, AUDIT_EVENTS, LIMITS_SHARED, SIGNING_KEYS
from tokensmith.runtime.services import Services, open_services
from tokensmith.settings import Settings, load_settings
from tokensmith.web import cors
from tokensmith.web.endpoints import is_pipeline_endpoint
from tokensmith.web.envelope import Envelope, classify
from tokensmith.web.lean import LeanApp
from tokensmith.web.responses import error_response
from tokensmith.web.state import attach

__all__ = ["create_app", "create_app_from_environment"]

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]


def routes(capabilities: Capabilities) -> list[BaseRoute]:
    """The router, generated from the capability registry: every route a feature declares, the
    CORS preflight of those browser apps may call, and the static files of the pages.

    One Starlette route per path, whatever number of features and methods serve it: a 405 then
    names every method the path answers (RFC 9110 §15.5.6), not those of its first route."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    preflights: dict[str, list[str]] = {}
    for route in capabilities.routes:
        handler = _handler(route.handler)
        for method in route.methods:
            by_path.setdefault(route.path, {})[method] = handler
        if route.cors_preflight:
            preflights.setdefault(route.path, []).extend(route.methods)
    for path, methods in preflights.items():
        by_path[path]["OPTIONS"] = cors.preflight(methods)
    built: list[BaseRoute] = [
        Route(path, _dispatch(handlers), methods=list(handlers))
        for path, handlers in by_path.items()
    ]
    for feature in capabilities.features:
        for mount, package in feature.static.items():
            files = StaticFiles(packages=[(package, "static")])
            built.append(Mount(mount, files, name=mount.strip("/")))
    return built


def lean_endpoints(
    capabilities: Capabilities, built: list[BaseRoute]
) -> dict[str, tuple[Route, Endpoint]]:
    """The paths whose POST is a pipeline endpoint, with their Starlette route (web/lean.py)."""
    by_path = {route.path: route for route in built if isinstance(route, Route)}
    found: dict[str, tuple[Route, Endpoint]] = {}
    for route in capabilities.routes:
        if "POST" in route.methods:
            handler = _handler(route.handler)
            # Capabilities refuses two features serving one (path, method): this is the POST.
            if is_pipeline_endpoint(handler):
                found[route.path] = (by_path[route.path], handler)
    return found


def _dispatch(handlers: dict[str, Endpoint]) -> Endpoint:
    """The handler of each method of one path (HEAD is GET's, as Starlette answers it)."""
    if len(set(handlers.values())) == 1:
        return next(iter(handlers.values()))
    by_method = {"HEAD": handlers["GET"], **handlers} if "GET" in handlers else dict(handlers)

    async def dispatch(request: Request) -> Response:
        return await by_method[request.method](request)

    return dispatch


def _handler(name: str) -> Endpoint:
    """A route's "module:function" in tokensmith.web; a missing one stops the start-up."""
    module_name, _, function = name.partition(":")
    module = importlib.import_module(f"tokensmith.web.{module_name}")
    found = getattr(module, function, None)
    if not callable(found):
        raise RuntimeError(f"route handler {name!r} does not exist")
    return cast(Endpoint, found)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(NotFound("no such endpoint"))
    if exc.status_code == 405:
        return error_response(MethodNotAllowed("method not allowed"), dict(exc.headers or {}))
    return error_response(InvalidRequest(str(exc.detail)))


async def _oauth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)
    if exc.detail:
        log.info("request refused", extra={"error_code": exc.error, "detail": exc.detail})
    return error_response(exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    """Starlette answers for anything a route raises; make that answer 503 or a JSON 500.

    The exception is re-raised afterwards, and the envelope logs it (without a traceback).
    """
    error = classify(exc)
    return error_response(error, {"retry-after": "5"} if error.status == 503 else None)


def create_app(
    settings: Settings, services: Services | None = None, *, server_process: bool = False
) -> ASGIApp:
    """The ASGI app. Given ``services`` it uses them; otherwise it opens its own at start-up.
    ``server_process``: the app owns its process (``tokensmith serve``), so it may tune it."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = services is None
        running = services or await open_services(
            settings, apply_migrations=settings.mode == "development"
        )
        attach(app.state, running)
        if server_process:
            _tune_collector()
        LIMITS_SHARED.set(1 if running.limits.shared else 0)
        running.limits.on_degraded = lambda degraded: LIMITS_SHARED.set(0 if degraded else 1)
        running.anomalies.listeners.append(lambda alert: ANOMALIES.labels(alert.rule).inc())
        running.trail.listeners.append(_count_event)
        start_background(running, each_round=lambda: _publish_key_gauge(running))
        try:
            yield
        finally:
            ACCESS_LOG.flush()
            if owned:
                await running.close()
            else:
                await running.stop_tasks()
                await running.flush()

    capabilities = Capabilities(enabled_features(settings.enabled_grant_types))
    app = LeanApp(
        routes=routes(capabilities),
        lifespan=lifespan,
        exception_handlers={
            HTTPException: _http_error,
            OAuthError: _oauth_error,
            Exception: _unexpected,
        },
    )
    if services is not None:
        attach(app.state, services)
    _publish_key_gauge(services)
    # The envelope is the only access log. Uvicorn's logs whole URLs, and a query string can carry
    # a secret, so it stays off whatever logging configuration surrounds the app.
    logging.getLogger("uvicorn.access").disabled = True
    app.serve_lean(lean_endpoints(capabilities, app.routes))
    return Envelope(app, https=settings.issuer.startswith("https://"), proxies=settings.proxies)


def create_app_from_environment() -> ASGIApp:
    """Uvicorn's factory for each worker process: settings from the environment."""
    settings = load_settings(warn_unknown=False)  # `serve` warned before it started us
    configure_logging(settings.log_level)
    return create_app(settings, server_process=True)


_event_counters = LabelledChildren(AUDIT_EVENTS)


def _count_event(event: AuditEvent) -> None:
    # The reason is a refusal's error code or an API key's refusal reason: few, known values.
    reason = event.detail.get("reason") or event.detail.get("error") or ""
    _event_counters(event.event, event.outcome, str(reason)[:40]).inc()


def _tune_collector() -> None:
    # What start-up built (modules, the engine, the key ring) lives as long as the process:
    # moved out of the collector's sight, it is not scanned again at every full collection. A
    # request makes and drops many small containers, and batched records live half a second:
    # collecting every 700 allocations (the default) rescans them thousands of times a second.
    # docs/performance.md has the figures.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _publish_key_gauge(services: Services | None) -> None:
    if services is None:
        return
    counts = {"next": 0, "active": 0, "retiring": 0}
    for record in services.keyring.published():
        counts[record.state] = counts.get(record.state, 0) + 1
    for state, count in counts.items():
        SIGNING_KEYS.labels(state).set(count)
