"""The protocol objects the endpoints call, built once from the running services."""

from __future__ import annotations

from dataclasses import dataclass

from tokensmith.oauth.access_tokens import AccessTokenIssuer
from tokensmith.oauth.client_auth import ClientAuthenticator
from tokensmith.oauth.introspection import TokenInspector
from tokensmith.oauth.issuance import GrantDeps, TokenPolicy
from tokensmith.oauth.token_endpoint import TokenEndpoint
from tokensmith.oidc.id_tokens import IdTokenIssuer
from tokensmith.runtime.services import Services

__all__ = ["Protocol", "build_protocol"]


@dataclass(frozen=True)
class Protocol:
    token: TokenEndpoint
    inspector: TokenInspector
    deps: GrantDeps
    authenticator: ClientAuthenticator


def build_protocol(services: Services) -> Protocol:
    settings = services.settings
    keyring = services.keyring
    issuer = AccessTokenIssuer(
        issuer=settings.issuer,
        signing_key=lambda: keyring.active,
        pepper=services.master.pepper,
        clock=services.clock,
    )
    policy = TokenPolicy(
        default_audience=settings.audience,
        access_token_ttl=settings.access_token_ttl,
        max_lifetime=settings.token_max_lifetime,
        refresh_token_ttl=settings.refresh_token_ttl,
        family_max_lifetime=settings.refresh_family_max_lifetime,
        idle_timeout=settings.refresh_idle_timeout,
    )
    id_tokens = IdTokenIssuer(
        issuer=settings.issuer,
        signing_key=lambda: keyring.active,
        clock=services.clock,
        lifetime=min(settings.access_token_ttl, settings.token_max_lifetime),
    )
    deps = GrantDeps(
        clients=services.clients,
        tokens=services.tokens,
        refresh=services.refresh,
        codes=services.codes,
        users=services.users,
        access=issuer,
        id_tokens=id_tokens,
        policy=policy,
        pepper=services.master.pepper,
        master=services.master,
        clock=services.clock,
        audit=services.trail,
    )
    authenticator = ClientAuthenticator(
        clients=services.clients,
        pepper=services.master.pepper,
        clock=services.clock,
        issuer=settings.issuer,
        leeway=settings.clock_leeway,
        replay=services.assertions,
    )
    token = TokenEndpoint(deps)
    inspector = TokenInspector(
        issuer=settings.issuer,
        clients=services.clients,
        tokens=services.tokens,
        refresh=services.refresh,
        verification_keys=keyring.verification_keys,
        pepper=services.master.pepper,
        clock=services.clock,
        leeway=settings.clock_leeway,
    )
    return Protocol(token=token, inspector=inspector, deps=deps, authenticator=authenticator)
