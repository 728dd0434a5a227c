"""Where request handlers find the running services and the protocol objects built on them."""

from __future__ import annotations

from typing import Any, cast

from starlette.requests import Request

from tokensmith.runtime.protocol import Protocol
from tokensmith.runtime.services import Services

__all__ = ["attach", "protocol_of", "services_of"]


def attach(state: Any, services: Services) -> None:
    state.services = services


def services_of(request: Request) -> Services:
    return cast(Services, request.app.state.services)


def protocol_of(request: Request) -> Protocol:
    return services_of(request).protocol
