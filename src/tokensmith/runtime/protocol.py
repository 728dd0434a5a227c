"""The protocol objects the endpoints call, built once from the running services.

One factory per feature, all in this module, called by the one composition root
(``runtime/services.py: open_services``): the grant registry and the capability registry from
settings, the token responder and its hooks, the client pipeline's endpoints.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokensmith.errors import OAuthError
from tokensmith.oauth.access_tokens import AccessTokenIssuer
from tokensmith.oauth.capabilities import Capabilities, Feature
from tokensmith.oauth.client_auth import ClientAuthenticator
from tokensmith.oauth.device_approval import DeviceApproval
from tokensmith.oauth.device_authorization import DeviceAuthorization, DeviceTiming
from tokensmith.oauth.dpop import DpopBinding, DpopChecker, DpopNonces, TokenEndpointDpop
from tokensmith.oauth.grant_types import GrantRegistry
from tokensmith.oauth.introspection import InspectionEndpoints, TokenInspector
from tokensmith.oauth.issuance import GrantDeps, ResponseHook, TokenPolicy, TokenResponder
from tokensmith.oauth.key_verification import KeyVerification
from tokensmith.oauth.par import PushedAuthorization
from tokensmith.oauth.pipeline import ClientEndpoint, Handler, Precheck
from tokensmith.oauth.resource_encryption import ResourceEncryption
from tokensmith.oauth.secret_leaks import ClientSecretLeaks
from tokensmith.oauth.token_endpoint import TokenEndpoint
from tokensmith.oidc.id_tokens import IdTokenIssuer
from tokensmith.runtime.features import FEATURES, GrantKit, build_grants, enabled_features
from tokensmith.runtime.metrics import AUDIT_EVENTS
from tokensmith.runtime.throttle import LockoutSettings, Throttle

if TYPE_CHECKING:
    from tokensmith.runtime.services import Services

__all__ = ["Protocol", "build_protocol"]


@dataclass(frozen=True)
class Protocol:
    capabilities: Capabilities
    grants: GrantRegistry
    responder: TokenResponder
    deps: GrantDeps
    authenticator: ClientAuthenticator
    inspector: TokenInspector
    throttle: Throttle
    token: ClientEndpoint
    introspection: ClientEndpoint
    revocation: ClientEndpoint
    key_verification: ClientEndpoint
    secret_leaks: ClientSecretLeaks
    device_authorization: ClientEndpoint
    device_approval: DeviceApproval
    dpop: DpopChecker  # RFC 9449 proofs, for /token and for userinfo
    par: ClientEndpoint  # POST /par (RFC 9126)
    pushed_authorization: PushedAuthorization  # and what /authorize takes back from it


def build_protocol(
    services: Services,
    *,
    features: Iterable[Feature] = FEATURES,
    hooks: Sequence[ResponseHook] = (),
) -> Protocol:
    settings = services.settings
    throttle = _throttle(services)
    responder, policy, deps = _issuance(services, (DpopBinding(), *hooks))
    dpop = DpopChecker(
        replay=services.dpop_proofs,
        nonces=DpopNonces(services.master.dpop_nonce_key),
        clock=services.clock,
        max_age=settings.dpop_proof_max_age,
        require_nonce=settings.dpop_nonce,
    )
    inspector = TokenInspector(
        issuer=settings.issuer,
        clients=services.clients,
        tokens=services.tokens,
        refresh=services.refresh,
        verification_keys=services.keyring.verification_keys,
        pepper=services.master.pepper,
        clock=services.clock,
        leeway=settings.clock_leeway,
    )
    kit = GrantKit(
        services=services, responder=responder, policy=policy, deps=deps, inspector=inspector
    )
    enabled = enabled_features(settings.enabled_grant_types, features)
    grants = build_grants(enabled, kit)
    capabilities = Capabilities(enabled, grants.grant_types)
    authenticator = ClientAuthenticator(
        clients=services.clients,
        pepper=services.master.pepper,
        clock=services.clock,
        issuer=settings.issuer,
        leeway=settings.clock_leeway,
        replay=services.assertions,
    )

    def endpoint(
        name: str,
        handler: Handler,
        *,
        precheck: Precheck | None = None,
        confidential_only: bool = False,
        client_optional: bool = False,
    ) -> ClientEndpoint:
        return ClientEndpoint(
            name=name,
            handler=handler,
            authenticator=authenticator,
            gate=throttle,
            audit=services.trail,
            clock=services.clock,
            precheck=precheck,
            confidential_only=confidential_only,
            client_optional=client_optional,
            on_unaudited=_count_unaudited,
        )

    # htu is this server's own URL, from the issuer: the Host header is the client's to choose.
    token = TokenEndpoint(grants, TokenEndpointDpop(dpop, settings.issuer + "/token"))
    inspection = InspectionEndpoints(inspector)
    verification = KeyVerification(
        verifier=services.key_verifier,
        gate=throttle,
        audit=services.trail,
        anomalies=services.anomalies,
        clock=services.clock,
        throttle_held_keys=settings.anomaly_spike_action == "throttle",
        on_verified=AUDIT_EVENTS.labels("api_key.verified", "success", "").inc,
    )
    device = DeviceAuthorization(
        grants=services.device_grants,
        pepper=services.master.pepper,
        clock=services.clock,
        issuer=settings.issuer,
        default_audience=policy.default_audience,
        timing=DeviceTiming(settings.device_code_ttl, settings.device_poll_interval),
        encryption=ResourceEncryption(settings.resource_encryption),
    )
    pushed = PushedAuthorization(
        store=services.pushed_requests,
        pepper=services.master.pepper,
        clock=services.clock,
        ttl=settings.par_ttl,
        dpop=dpop,
        par_url=settings.issuer + "/par",
    )
    return Protocol(
        capabilities=capabilities,
        grants=grants,
        responder=responder,
        deps=deps,
        authenticator=authenticator,
        inspector=inspector,
        throttle=throttle,
        token=endpoint("token", token.handle, precheck=token.precheck),
        introspection=endpoint("introspection", inspection.introspect, confidential_only=True),
        revocation=endpoint("revocation", inspection.revoke),
        key_verification=endpoint(
            "api_key_verification", verification.handle, client_optional=True
        ),
        secret_leaks=ClientSecretLeaks(
            services.clients,
            services.master.pepper,
            services.clock,
            services.trail,
            services.webhooks.notify,
        ),
        device_authorization=endpoint("device_authorization", device.handle),
        device_approval=DeviceApproval(
            grants=services.device_grants,
            clients=services.clients,
            pepper=services.master.pepper,
            clock=services.clock,
            audit=services.trail,
        ),
        dpop=dpop,
        par=endpoint("par", pushed.handle),
        pushed_authorization=pushed,
    )


def _throttle(services: Services) -> Throttle:
    settings = services.settings
    return Throttle(
        services.limits,
        LockoutSettings(
            account_failures=settings.lockout_account_failures,
            client_failures=settings.lockout_client_failures,
            address_failures=settings.lockout_address_failures,
            first_lock=settings.lockout_first,
            longest_lock=settings.lockout_longest,
            rate_limit_per_address=settings.rate_limit_per_address,
            user_code_failures=settings.lockout_user_code_failures,
            user_code_address_failures=settings.lockout_user_code_address_failures,
        ),
    )


def _issuance(
    services: Services, hooks: Sequence[ResponseHook]
) -> tuple[TokenResponder, TokenPolicy, GrantDeps]:
    settings = services.settings
    keyring = services.keyring
    policy = TokenPolicy(
        default_audience=settings.audience,
        access_token_ttl=settings.access_token_ttl,
        max_lifetime=settings.token_max_lifetime,
        refresh_token_ttl=settings.refresh_token_ttl,
        family_max_lifetime=settings.refresh_family_max_lifetime,
        idle_timeout=settings.refresh_idle_timeout,
        refresh_grace=settings.refresh_grace,
    )
    responder = TokenResponder(
        access=AccessTokenIssuer(
            issuer=settings.issuer,
            signing_key=lambda: keyring.active,
            pepper=services.master.pepper,
            clock=services.clock,
            encryption=ResourceEncryption(settings.resource_encryption),
        ),
        id_tokens=IdTokenIssuer(
            issuer=settings.issuer,
            signing_key=lambda: keyring.active,
            clock=services.clock,
            lifetime=min(settings.access_token_ttl, settings.token_max_lifetime),
        ),
        tokens=services.tokens,
        audit=services.trail,
        clock=services.clock,
        hooks=tuple(hooks),
    )
    deps = GrantDeps(
        clients=services.clients,
        tokens=services.tokens,
        refresh=services.refresh,
        codes=services.codes,
        users=services.users,
        responder=responder,
        policy=policy,
        pepper=services.master.pepper,
        master=services.master,
        clock=services.clock,
        audit=services.trail,
    )
    return responder, policy, deps


def _count_unaudited(endpoint: str, error: OAuthError) -> None:
    # Under the labels its audit row was counted by (web/app.py), so the metric goes on as before.
    AUDIT_EVENTS.labels(f"{endpoint}.refused", "failure", error.error).inc()
