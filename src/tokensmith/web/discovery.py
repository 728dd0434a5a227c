"""Discovery endpoints: RFC 8414 and OpenID Connect Discovery 1.0, plus the JWKS (RFC 7517 §5)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.oauth.metadata import Capabilities, server_metadata
from tokensmith.oauth.token_endpoint import SUPPORTED_GRANT_TYPES
from tokensmith.web.responses import json_response
from tokensmith.web.state import services_of

__all__ = ["CAPABILITIES", "jwks", "metadata"]

_CLIENT_AUTH = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
CAPABILITIES = Capabilities(
    jwks_path="/jwks",
    response_types=("code",),
    grant_types=SUPPORTED_GRANT_TYPES,
    endpoints={
        "authorization_endpoint": "/authorize",
        "userinfo_endpoint": "/userinfo",
        "end_session_endpoint": "/logout",
        "token_endpoint": "/token",
        "introspection_endpoint": "/introspect",
        "revocation_endpoint": "/revoke",
    },
    extra={
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "prompt_values_supported": ["none", "login", "consent"],
        "subject_types_supported": ["public"],
        "claims_supported": ["sub", "preferred_username", "email"],
        "scopes_supported": ["openid", "profile", "email"],
        "token_endpoint_auth_methods_supported": [*_CLIENT_AUTH, "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "Ed25519", "EdDSA", "RS256"],
        "introspection_endpoint_auth_methods_supported": _CLIENT_AUTH,
        "revocation_endpoint_auth_methods_supported": _CLIENT_AUTH,
    },
)


async def metadata(request: Request) -> Response:
    services = services_of(request)
    body = server_metadata(services.settings.issuer, CAPABILITIES)
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
