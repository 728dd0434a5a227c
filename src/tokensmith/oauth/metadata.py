"""Authorization server metadata (RFC 8414 §2) and OpenID Provider metadata (OIDC Discovery §3).

The document is assembled from what the server actually implements: each capability contributes
its own fields when it is switched on, so the metadata can never advertise an endpoint that does
not answer (a test requests every URL it lists).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Capabilities", "server_metadata"]


@dataclass(frozen=True)
class Capabilities:
    """What this server can do today; later capabilities add fields and endpoints here."""

    jwks_path: str = "/jwks"
    response_types: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ()
    endpoints: dict[str, str] = field(default_factory=dict)  # metadata name -> path
    extra: dict[str, Any] = field(default_factory=dict)


def server_metadata(issuer: str, capabilities: Capabilities) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "issuer": issuer,
        "jwks_uri": issuer + capabilities.jwks_path,
        # REQUIRED by RFC 8414 §2.
        "response_types_supported": list(capabilities.response_types),
    }
    if capabilities.grant_types:
        metadata["grant_types_supported"] = list(capabilities.grant_types)
    for name, path in capabilities.endpoints.items():
        metadata[name] = issuer + path
    metadata.update(capabilities.extra)
    return metadata
