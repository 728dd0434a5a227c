"""Discovery endpoints: RFC 8414 and OpenID Connect Discovery 1.0, plus the JWKS (RFC 7517 §5)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.web.responses import json_response
from tokensmith.web.state import protocol_of, services_of

__all__ = ["jwks", "metadata"]


async def metadata(request: Request) -> Response:
    services = services_of(request)
    # Generated from the capability registry (runtime/features.py): only what is registered.
    body = protocol_of(request).capabilities.metadata(services.settings.issuer)
    if "pushed_authorization_request_endpoint" in body:  # RFC 9126 §5: the server-wide switch
        body["require_pushed_authorization_requests"] = services.settings.require_par
    # ID tokens are signed with whatever the ring holds; publish those algorithms, not a guess.
    body["id_token_signing_alg_values_supported"] = sorted(
        {record.alg for record in services.keyring.published() if record.state != "next"}
    )
    return json_response(body, headers={"cache-control": "public, max-age=300"})


async def jwks(request: Request) -> Response:
    services = services_of(request)
    max_age = services.settings.jwks_max_age
    return json_response(
        services.keyring.jwks(),
        headers={
            "cache-control": f"public, max-age={max_age}",
            "content-type": "application/jwk-set+json",
        },
    )
