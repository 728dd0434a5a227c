"""What the server can do, declared once per feature: the capability registry.

Each feature names its HTTP routes, the discovery metadata (RFC 8414 §2, OIDC Discovery §3) it
contributes, the grant handlers it registers and the client-authentication methods it accepts.
The router (``web/app.py``), the discovery document, the grant registry and the lists client
registration validates against are all generated from the registry, so the metadata can never
advertise an endpoint that does not answer, nor a grant that /token refuses.

Routes name their handler as ``"module:function"`` under ``tokensmith.web``, so this module stays
free of any web framework; ``web/app.py`` resolves them and fails at start-up if one is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tokensmith.oauth.grant_types import GrantHandler

__all__ = ["Capabilities", "Feature", "Route"]

ClientAuth = Literal["any", "confidential"]
# Discovery fields ``metadata`` builds from the registry itself; no feature may set them.
_GENERATED = frozenset({"issuer", "response_types_supported", "grant_types_supported"})
_GENERATED_SUFFIXES = ("_auth_methods_supported", "_auth_signing_alg_values_supported")


@dataclass(frozen=True, slots=True)
class Route:
    path: str
    methods: tuple[str, ...]
    handler: str  # "module:function" in tokensmith.web
    metadata_name: str | None = None  # listed in discovery under this name, as issuer + path
    client_auth: ClientAuth | None = None  # behind the client pipeline: which methods it takes
    cors_preflight: bool = False  # browser apps may call it: answer OPTIONS preflights


@dataclass(frozen=True)
class Feature:
    name: str
    routes: tuple[Route, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # Built by the composition root from its services; one per grant_type the feature adds.
    grants: tuple[Callable[[Any], GrantHandler], ...] = ()
    # Client authentication methods (RFC 7591 §2 names) the feature makes available, and the
    # JWS algorithms a private_key_jwt assertion may be signed with.
    auth_methods: tuple[str, ...] = ()
    assertion_algs: tuple[str, ...] = ()
    response_types: tuple[str, ...] = ()
    static: Mapping[str, str] = field(default_factory=dict)  # mount path -> package


class Capabilities:
    """The enabled features, checked for clashes, and what is generated from them."""

    def __init__(self, features: Iterable[Feature], grant_types: Iterable[str] = ()) -> None:
        self.features = tuple(features)
        self.grant_types = tuple(grant_types)
        seen_routes: dict[tuple[str, str], str] = {}
        seen_fields: dict[str, str] = {}
        for feature in self.features:
            for route in feature.routes:
                for method in route.methods:
                    key = (route.path, method)
                    if key in seen_routes:
                        raise ValueError(f"{feature.name} and {seen_routes[key]} both serve {key}")
                    seen_routes[key] = feature.name
            for field_name in feature.metadata:
                if field_name in _GENERATED or field_name.endswith(_GENERATED_SUFFIXES):
                    raise ValueError(f"{feature.name}: {field_name} is generated from the registry")
            for name in (*feature.metadata, *(r.metadata_name for r in feature.routes)):
                if name is None:
                    continue
                if name in seen_fields:
                    raise ValueError(f"{feature.name} and {seen_fields[name]} both set {name}")
                seen_fields[name] = feature.name

    @property
    def routes(self) -> tuple[Route, ...]:
        return tuple(route for feature in self.features for route in feature.routes)

    @property
    def auth_methods(self) -> tuple[str, ...]:
        """Every client-authentication method some feature accepts, "none" (public clients)
        included."""
        return tuple(dict.fromkeys(m for f in self.features for m in f.auth_methods))

    @property
    def assertion_algs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a for f in self.features for a in f.assertion_algs))

    @property
    def response_types(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for f in self.features for t in f.response_types))

    def metadata(self, issuer: str) -> dict[str, Any]:
        """The discovery document: RFC 8414 and OpenID Provider metadata in one."""
        body: dict[str, Any] = {
            "issuer": issuer,
            # REQUIRED by RFC 8414 §2, even if empty.
            "response_types_supported": list(self.response_types),
        }
        if self.grant_types:
            body["grant_types_supported"] = list(self.grant_types)
        confidential = [m for m in self.auth_methods if m != "none"]
        for route in self.routes:
            if route.metadata_name is None:
                continue
            body[route.metadata_name] = issuer + route.path
            if route.client_auth is not None:
                methods = self.auth_methods if route.client_auth == "any" else confidential
                prefix = route.metadata_name.removesuffix("_endpoint")
                body[f"{prefix}_endpoint_auth_methods_supported"] = list(methods)
                if "private_key_jwt" in methods:  # RFC 8414 §2: then this MUST be present
                    algs = list(self.assertion_algs)
                    body[f"{prefix}_endpoint_auth_signing_alg_values_supported"] = algs
        for feature in self.features:
            body.update(feature.metadata)
        return body
