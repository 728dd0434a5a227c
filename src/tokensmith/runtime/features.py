"""The server's features, each declared once: its routes, discovery fields, grants and client
authentication methods (``oauth/capabilities.py`` says how the registry uses them).

To add a grant: write its module (a class with ``grant_type``, ``parameters``,
``confidential_only`` and ``handle``), then add one line to the feature's ``grants`` here. The
router, discovery, client registration and /token follow. docs/architecture.md has a worked
example.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tokensmith.errors import ConfigError
from tokensmith.jose.algorithms import ALGORITHMS
from tokensmith.jose.dpop import DPOP_ALGORITHMS
from tokensmith.jose.jwe import CONTENT_ENCRYPTION, KEY_MANAGEMENT
from tokensmith.oauth.capabilities import Feature, Route
from tokensmith.oauth.client_credentials import ClientCredentialsGrant
from tokensmith.oauth.code_exchange import AuthorizationCodeGrant
from tokensmith.oauth.device_code import DeviceCodeGrant
from tokensmith.oauth.exchange_subjects import TokenReader
from tokensmith.oauth.grant_types import GrantHandler, GrantRegistry
from tokensmith.oauth.introspection import TokenInspector
from tokensmith.oauth.issuance import GrantDeps, TokenPolicy, TokenResponder
from tokensmith.oauth.refresh_rotation import RefreshTokenGrant
from tokensmith.oauth.token_exchange import ExchangeSettings, TokenExchangeGrant

if TYPE_CHECKING:
    from tokensmith.runtime.services import Services

__all__ = ["FEATURES", "GrantKit", "build_grants", "enabled_features"]

# Client authentication at the endpoints behind the client pipeline (RFC 6749 §2.3, RFC 7523).
_CLIENT_AUTH = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
# A client's assertion key may be of any algorithm we verify (jose/keys.py checks each).
_ASSERTION_ALGS = tuple(ALGORITHMS)


@dataclass(frozen=True)
class GrantKit:
    """What a grant factory may build its handler from."""

    services: Services
    responder: TokenResponder
    policy: TokenPolicy
    deps: GrantDeps
    inspector: TokenInspector  # finds access tokens as introspection does (token exchange)
    # The grant features switched on (set by ``build_grants``): a grant may depend on another,
    # as the code grant hands out refresh tokens only when the refresh grant takes them.
    grant_features: frozenset[str] = frozenset()


def _code(kit: GrantKit) -> GrantHandler:
    return AuthorizationCodeGrant(kit.deps, refresh="refresh_token" in kit.grant_features)


def _refresh(kit: GrantKit) -> GrantHandler:
    return RefreshTokenGrant(kit.deps)


def _client_credentials(kit: GrantKit) -> GrantHandler:
    return ClientCredentialsGrant(kit.responder, kit.policy)


def _device_code(kit: GrantKit) -> GrantHandler:
    grants = kit.services.device_grants
    return DeviceCodeGrant(kit.deps, grants, refresh="refresh_token" in kit.grant_features)


def _token_exchange(kit: GrantKit) -> GrantHandler:
    services, settings = kit.services, kit.services.settings
    keyring = services.keyring
    reader = TokenReader(
        issuer=settings.issuer,
        inspector=kit.inspector,
        users=services.users,
        consents=services.consents,
        keys=services.key_verifier,
        verification_keys=keyring.verification_keys,
        clock=services.clock,
        leeway=settings.clock_leeway,
    )
    return TokenExchangeGrant(
        reader=reader,
        responder=kit.responder,
        policy=kit.policy,
        settings=ExchangeSettings(
            api_key_ttl=settings.api_key_exchange_ttl,
            txn_audience=settings.txn_token_audience,
            txn_ttl=settings.txn_token_ttl,
        ),
        issuer=settings.issuer,
        signing_key=lambda: keyring.active,
        clock=services.clock,
        audit=services.trail,
    )


FEATURES: tuple[Feature, ...] = (
    # The stylesheet of every page: the code flow's login and consent, and the logout page of
    # OpenID Connect, which stays when the code flow is switched off.
    Feature("pages", static={"/static": "tokensmith.web"}),
    Feature(
        "discovery",
        routes=(
            Route("/.well-known/oauth-authorization-server", ("GET",), "discovery:metadata"),
            Route("/.well-known/openid-configuration", ("GET",), "discovery:metadata"),
            Route("/jwks", ("GET",), "discovery:jwks", metadata_name="jwks_uri"),
        ),
    ),
    Feature(
        "authorization_code",
        routes=(
            Route(
                "/authorize",
                ("GET",),
                "authorize:authorize",
                metadata_name="authorization_endpoint",
            ),
            Route("/login", ("POST",), "authorize:login"),
            Route("/consent", ("POST",), "authorize:consent"),
            # RFC 9126: the request pushed behind the client pipeline, then /authorize reads it.
            Route(
                "/par",
                ("POST",),
                "par:pushed",
                metadata_name="pushed_authorization_request_endpoint",
                cors_preflight=True,
            ),
        ),
        metadata={
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
            "prompt_values_supported": ["none", "login", "consent"],
        },
        grants=(_code,),
        response_types=("code",),
    ),
    Feature("refresh_token", grants=(_refresh,)),
    Feature("client_credentials", grants=(_client_credentials,)),
    # RFC 8693, with API keys and transaction tokens as well (oauth/token_exchange.py).
    Feature("token_exchange", grants=(_token_exchange,)),
    # RFC 8628: the device asks at /device_authorization and polls /token; its user decides at
    # /device (sign-in, the code typed, then a confirmation: web/device.py).
    Feature(
        "device_code",
        routes=(
            Route(
                "/device_authorization",
                ("POST",),
                "device:authorization",
                metadata_name="device_authorization_endpoint",
            ),
            Route("/device", ("GET", "POST"), "device:page"),
        ),
        grants=(_device_code,),
    ),
    Feature(
        "token",
        routes=(
            Route(
                "/token",
                ("POST",),
                "token:token",
                metadata_name="token_endpoint",
                client_auth="any",
                cors_preflight=True,
            ),
        ),
        auth_methods=_CLIENT_AUTH,
        assertion_algs=_ASSERTION_ALGS,
        # RFC 9449 §5.1: /token (and userinfo) take proofs signed with these.
        metadata={"dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS)},
    ),
    Feature(
        "introspection",
        routes=(
            Route(
                "/introspect",
                ("POST",),
                "token:introspect",
                metadata_name="introspection_endpoint",
                client_auth="confidential",
            ),
        ),
    ),
    Feature(
        "revocation",
        routes=(
            Route(
                "/revoke",
                ("POST",),
                "token:revoke",
                metadata_name="revocation_endpoint",
                client_auth="any",
                cors_preflight=True,
            ),
        ),
    ),
    Feature(
        "openid_connect",
        routes=(
            Route(
                "/userinfo",
                ("GET", "POST"),
                "oidc:userinfo",
                metadata_name="userinfo_endpoint",
                cors_preflight=True,
            ),
            Route("/logout", ("GET",), "oidc:logout", metadata_name="end_session_endpoint"),
            Route("/logout", ("POST",), "oidc:logout_confirmed"),
        ),
        metadata={
            "subject_types_supported": ["public"],
            "claims_supported": ["sub", "preferred_username", "email"],
            "scopes_supported": ["openid", "profile", "email"],
            # OIDC Discovery §3: what a client may register for encrypted ID tokens and userinfo.
            "id_token_encryption_alg_values_supported": list(KEY_MANAGEMENT),
            "id_token_encryption_enc_values_supported": list(CONTENT_ENCRYPTION),
            "userinfo_encryption_alg_values_supported": list(KEY_MANAGEMENT),
            "userinfo_encryption_enc_values_supported": list(CONTENT_ENCRYPTION),
        },
    ),
    Feature(
        "api_keys",
        routes=(
            Route("/api-keys/verify", ("POST",), "api_keys:verify"),
            Route("/api-keys/leaks", ("POST",), "api_keys:report_leaks"),
        ),
    ),
    Feature(
        "admin",
        routes=(
            Route("/admin/api-keys", ("GET",), "admin:list_keys"),
            Route("/admin/api-keys", ("POST",), "admin:create_key"),
            Route("/admin/api-keys/{key_id}", ("GET",), "admin:show_key"),
            Route("/admin/api-keys/{key_id}/rotate", ("POST",), "admin:rotate_key"),
            Route("/admin/api-keys/{key_id}/revoke", ("POST",), "admin:revoke_key"),
            Route("/admin/clients/{client_id}", ("DELETE",), "admin:delete_client"),
            Route("/admin/audit", ("GET",), "admin:audit_events"),
            Route("/admin/lockouts/clear", ("POST",), "admin:clear_lockouts"),
        ),
    ),
    Feature(
        "operations",
        routes=(
            Route("/healthz", ("GET",), "health:healthz"),
            Route("/readyz", ("GET",), "health:readyz"),
            Route("/metrics", ("GET",), "metrics:metrics_endpoint"),
        ),
    ),
)


def enabled_features(
    grant_names: Iterable[str], features: Iterable[Feature] = FEATURES
) -> tuple[Feature, ...]:
    """The features switched on: a feature that adds grants is on when TOKENSMITH_GRANT_TYPES
    names it; the others always are."""
    features = tuple(features)
    offered = [f.name for f in features if f.grants]
    wanted = tuple(grant_names)
    unknown = [name for name in wanted if name not in offered]
    if unknown:
        raise ConfigError(
            f"TOKENSMITH_GRANT_TYPES: {unknown[0][:40]!r} is not a grant type "
            f"(choose from {', '.join(offered)})"
        )
    return tuple(f for f in features if not f.grants or f.name in wanted)


def build_grants(features: Iterable[Feature], kit: GrantKit) -> GrantRegistry:
    features = tuple(features)
    kit = replace(kit, grant_features=frozenset(f.name for f in features if f.grants))
    return GrantRegistry(factory(kit) for feature in features for factory in feature.grants)
