"""The grant registry, the token endpoint's dispatch through it, and the capability registry
(oauth/grant_types.py, oauth/token_endpoint.py, oauth/capabilities.py, runtime/features.py)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest

from tests.support import OFFERED, token_request
from tokensmith.errors import ConfigError, UnauthorizedClient, UnsupportedGrantType
from tokensmith.oauth.capabilities import Capabilities, Feature, Route
from tokensmith.oauth.clients import Client, NewClient
from tokensmith.oauth.grant_types import GrantRegistry
from tokensmith.oauth.params import Params
from tokensmith.oauth.request import ProtocolRequest
from tokensmith.oauth.token_endpoint import TokenEndpoint
from tokensmith.runtime.features import FEATURES, enabled_features

pytestmark = pytest.mark.anyio


@dataclass
class Toy:
    grant_type: str = "urn:example:toy"
    parameters: frozenset[str] = frozenset({"toy"})
    confidential_only: bool = False

    async def handle(self, request: ProtocolRequest, client: Client) -> dict[str, Any]:
        return {"toy": request.params.get("toy"), "client": client.client_id}


def public(*grants: str) -> Client:
    return NewClient(
        "p", is_public=True, grant_types=grants, redirect_uris=("https://a.test/cb",)
    ).validated("p", None, 0, offered=OFFERED)


def test_a_grant_type_is_registered_once() -> None:
    with pytest.raises(ValueError, match="twice"):
        GrantRegistry([Toy(), Toy()])


@pytest.mark.parametrize("name", ["password", "implicit"])
def test_password_and_implicit_can_never_be_registered(name: str) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        GrantRegistry([Toy(grant_type=name)])


@pytest.mark.parametrize("owned", ["client_id", "client_secret", "client_assertion", "grant_type"])
def test_no_grant_may_claim_the_client_authentication_parameters(owned: str) -> None:
    with pytest.raises(ValueError, match=owned):
        GrantRegistry([Toy(parameters=frozenset({owned}))])


async def test_the_endpoint_dispatches_to_the_registered_handler() -> None:
    endpoint = TokenEndpoint(GrantRegistry([Toy()]))
    request = token_request(Params([("grant_type", "urn:example:toy"), ("toy", "yes")]))
    endpoint.precheck(request)
    client = public("authorization_code")
    with pytest.raises(UnauthorizedClient):  # registered here, but not for this client
        await endpoint.handle(request, client)
    allowed = replace(client, grant_types=("urn:example:toy",))
    answer = await endpoint.handle(request, allowed)
    assert answer.body == {"toy": "yes", "client": "p"}
    assert answer.headers["cache-control"] == "no-store"


async def test_an_unregistered_grant_type_is_unsupported_before_authentication() -> None:
    endpoint = TokenEndpoint(GrantRegistry([Toy()]))
    with pytest.raises(UnsupportedGrantType):
        endpoint.precheck(token_request(Params([("grant_type", "client_credentials")])))


async def test_a_confidential_only_grant_refuses_a_public_client() -> None:
    endpoint = TokenEndpoint(GrantRegistry([Toy(confidential_only=True)]))
    request = token_request(Params([("grant_type", "urn:example:toy")]))
    client = replace(public(), grant_types=("urn:example:toy",))
    with pytest.raises(UnauthorizedClient, match="public"):
        await endpoint.handle(request, client)


def test_registration_follows_the_offered_grants() -> None:
    only_code = GrantRegistry([Toy(grant_type="authorization_code")])
    with pytest.raises(ValueError, match="unsupported grant type 'client_credentials'"):
        NewClient("svc", grant_types=("client_credentials",)).validated(
            "svc", b"x" * 32, 0, offered=only_code
        )
    strict = GrantRegistry([Toy(confidential_only=True)])
    with pytest.raises(ValueError, match="public client cannot use urn:example:toy"):
        NewClient(
            "p", is_public=True, grant_types=("urn:example:toy",), redirect_uris=("https://a/cb",)
        ).validated("p", None, 0, offered=strict)


def test_grant_features_follow_the_grant_types_setting() -> None:
    names = {f.name for f in enabled_features(["authorization_code", "refresh_token"])}
    assert "client_credentials" not in names
    assert {"token", "discovery", "authorization_code", "refresh_token"} <= names
    with pytest.raises(ConfigError, match="TOKENSMITH_GRANT_TYPES: 'password'"):
        enabled_features(["password"])


def test_two_features_may_not_serve_one_route_or_set_one_field() -> None:
    a = Feature("a", routes=(Route("/x", ("GET",), "m:f"),))
    with pytest.raises(ValueError, match="both serve"):
        Capabilities([a, Feature("b", routes=(Route("/x", ("GET",), "m:g"),))])
    with pytest.raises(ValueError, match="both set"):
        Capabilities([Feature("c", metadata={"k": 1}), Feature("d", metadata={"k": 2})])
    for generated in ("grant_types_supported", "issuer", "token_endpoint_auth_methods_supported"):
        with pytest.raises(ValueError, match="generated from the registry"):
            Capabilities([Feature("e", metadata={generated: ["password"]})])


def test_discovery_is_generated_from_the_registry() -> None:
    capabilities = Capabilities(enabled_features(["client_credentials"]), ("client_credentials",))
    body = capabilities.metadata("https://issuer.test")
    assert body["grant_types_supported"] == ["client_credentials"]
    assert "authorization_endpoint" not in body  # the code feature is off
    assert body["response_types_supported"] == []  # RFC 8414 §2: required, even empty
    assert body["token_endpoint"] == "https://issuer.test/token"
    assert "none" in body["token_endpoint_auth_methods_supported"]
    assert "none" not in body["introspection_endpoint_auth_methods_supported"]
    listed = {v for k, v in body.items() if k.endswith(("_endpoint", "_uri"))}
    routed = {"https://issuer.test" + r.path for r in capabilities.routes}
    assert listed <= routed  # every listed URL is a route some feature serves


def test_every_endpoint_taking_private_key_jwt_lists_its_signing_algorithms() -> None:
    """RFC 8414 §2: the ``*_auth_signing_alg_values_supported`` entry MUST be present wherever
    private_key_jwt is listed, for revocation and introspection as for the token endpoint."""
    body = Capabilities(enabled_features(["client_credentials"])).metadata("https://i.test")
    listing = [k for k, v in body.items() if k.endswith("_auth_methods_supported")]
    assert len(listing) == 3
    for name in listing:
        if "private_key_jwt" in body[name]:
            algs = body[name.replace("_methods_", "_signing_alg_values_")]
            assert algs and "none" not in algs and not any(a.startswith("HS") for a in algs)


def test_every_feature_route_names_a_handler_that_exists() -> None:
    import importlib

    for feature in FEATURES:
        for route in feature.routes:
            module, _, function = route.handler.partition(":")
            found = getattr(importlib.import_module(f"tokensmith.web.{module}"), function, None)
            assert callable(found), route.handler
