"""Token exchange attacks found in review (SECURITY.md cases 132-140), through a running server.

Each test sends the attack over real HTTP and checks the answer with PyJWT and the JWKS.
"""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest

from tests.oauth.conftest import Registered, Registrar
from tests.oauth.test_token_exchange import (
    BILLING,
    ORDERS,
    TRUST,
    exchange,
    exchanger,
    own_token,
    refused,
    settings,
    verified,
)
from tokensmith.accounts.users import User
from tokensmith.oauth.clients import NewClient
from tokensmith.oauth.exchange_policy import ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, TXN_TOKEN_TYPE_URN
from tokensmith.oauth.grants import Consent
from tokensmith.oidc.id_tokens import IdTokenIssuer
from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings

__all__ = ["settings"]  # the module's settings fixture: a trust domain, keys re-read at once


@pytest.fixture
def frontend(register: Registrar) -> Registered:
    return register(
        NewClient(
            "frontend",
            grant_types=("client_credentials",),
            scope="orders:read orders:write",
            allowed_resources=(ORDERS,),
        )
    )


def test_impersonating_a_delegated_token_keeps_its_actor_chain(
    http: httpx.Client, register: Registrar, frontend: Registered
) -> None:
    """Case 132: the actor of a delegated token exchanges it again without naming itself; the
    answer must still say who acts, for an access token, a JWT and a transaction token."""
    orders = exchanger(
        register, "orders", accept_audiences=[ORDERS], audiences=[BILLING], txn_tokens=True
    )
    delegated = exchange(
        http,
        orders,
        own_token(http, frontend, resource=ORDERS),
        actor_token=own_token(http, orders),
        actor_token_type=ACCESS_TOKEN_TYPE,
    )
    assert delegated.status_code == 200, delegated.text
    token = delegated.json()["access_token"]
    chain = {"sub": orders.client_id, "client_id": orders.client_id}
    assert verified(http, token, ORDERS)[1]["act"] == chain

    laundered = exchange(http, orders, token, audience=BILLING)
    assert laundered.status_code == 200, laundered.text
    claims = verified(http, laundered.json()["access_token"], BILLING)[1]
    assert claims["sub"] == frontend.client_id and claims["act"] == chain

    txn = exchange(http, orders, token, requested_token_type=TXN_TOKEN_TYPE_URN, audience=TRUST)
    assert txn.status_code == 200, txn.text
    assert verified(http, txn.json()["access_token"], TRUST)[1]["act"] == chain


def _id_token(
    settings: Settings,
    client_id: str,
    user_id: str,
    *,
    change_password: bool = False,
    consent: str | None = "orders:read",
) -> str:
    """An ID token of ours for a new user, made with the server's own key, with the consent the
    user gave the client; then, if asked, the password changes (a second after the sign-in)."""

    async def make() -> str:
        services = await open_services(settings)
        try:
            now = services.clock.now()
            await services.users.add(User(user_id, user_id, None, "x", now - 10, now - 10))
            issuer = IdTokenIssuer(
                issuer=settings.issuer,
                signing_key=lambda: services.keyring.active,
                clock=services.clock,
                lifetime=300,
            )
            token = issuer.issue(
                client_id=client_id,
                subject=user_id,
                auth_time=None,
                nonce=None,
                access_token="a",
            )
            if consent is not None:  # what the consent page would have stored
                await services.consents.put(Consent(user_id, client_id, consent, now))
            if change_password:
                await services.users.set_password(user_id, "y", now + 1)
            return token
        finally:
            await services.close()

    return asyncio.run(make())


def test_an_id_token_from_before_a_password_change_is_refused(
    http: httpx.Client, register: Registrar, settings: Settings
) -> None:
    """Case 133: the password change that ends every refresh family ends ID-token exchanges too;
    the refusal is the one public description of case 105, and the audit names no token."""
    service = exchanger(register, "service", subject_types=["access_token", "id_token"])
    fresh = _id_token(settings, service.client_id, "kept", change_password=False)
    assert exchange(http, service, fresh, subject_token_type=ID_TOKEN_TYPE).status_code == 200
    stale = _id_token(settings, service.client_id, "changed", change_password=True)
    response = exchange(http, service, stale, subject_token_type=ID_TOKEN_TYPE)
    refused(response, "invalid_grant")
    assert response.json()["error_description"] == "the subject or actor token is not valid"
    assert stale not in json.dumps(response.json())
    own = own_token(http, service)
    as_actor = {"actor_token_type": ID_TOKEN_TYPE}
    refused(exchange(http, service, own, actor_token=stale, **as_actor), "invalid_grant")
    assert exchange(http, service, own, actor_token=fresh, **as_actor).status_code == 200


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


HOSTILE = [
    {"subject_token": ""},
    {"subject_token": "a.b.c"},
    {"subject_token": "e30.e30."},
    {"subject_token": "...."},
    {"subject_token": "x" * 9000},
    {"subject_token": "tsk_" + "x" * 60},
    {"subject_token": _b64(b'{"alg":"none","typ":"at+jwt"}') + "." + _b64(b"{}") + "."},
    {"subject_token": "\u00e9\u00e9.\u00e9.\u00e9"},
    {"subject_token_type": ""},
    {"subject_token_type": ID_TOKEN_TYPE},
    {"actor_token": "a.b.c", "actor_token_type": ACCESS_TOKEN_TYPE},
    {"actor_token": "a.b.c", "actor_token_type": "urn:tokensmith:params:oauth:token-type:api-key"},
    {"requested_token_type": "urn:ietf:params:oauth:token-type:refresh_token"},
    {"scope": "\u00e9"},
    {"scope": "a" * 3000},
    {"audience": "not a uri"},
    {"audience": "https://orders.example.com/"},
    {"resource": "https://orders.example.com#x"},
    {"requested_token_type": TXN_TOKEN_TYPE_URN, "audience": TRUST, "request_context": "[]"},
    {"requested_token_type": TXN_TOKEN_TYPE_URN, "request_context": "%%%"},
    {"requested_token_type": TXN_TOKEN_TYPE_URN, "request_context": _b64(b"\xff\xfe")},
    {"requested_token_type": TXN_TOKEN_TYPE_URN, "request_context": "{" * 2000},
    {"requested_token_type": TXN_TOKEN_TYPE_URN, "request_context": "[" * 3000},
    {"requested_token_type": TXN_TOKEN_TYPE_URN, "request_context": _b64(b"[" * 3000)},
    {"requested_token_type": TXN_TOKEN_TYPE_URN, "request_details": '{"txn": 5}'},
    {"requested_token_type": TXN_TOKEN_TYPE_URN, "request_details": '{"txn": ""}'},
    {"requested_token_type": TXN_TOKEN_TYPE_URN, "request_details": '{"txn": "a b"}'},
    {"requested_token_type": TXN_TOKEN_TYPE_URN, "request_details": '{"txn": ["x"]}'},
    # Case 134: JSON that would make the signed token itself invalid, or could not be encoded
    {"requested_token_type": TXN_TOKEN_TYPE_URN, "request_context": '{"a": 1e999}'},
    {"requested_token_type": TXN_TOKEN_TYPE_URN, "request_context": '{"a": NaN}'},
    {"requested_token_type": TXN_TOKEN_TYPE_URN, "request_details": '{"a": "\\ud800"}'},
    {"requested_token_type": TXN_TOKEN_TYPE_URN, "request_context": _b64(b'{"a": "\\udfff"}')},
    {"requested_token_type": TXN_TOKEN_TYPE_URN, "request_details": "{}" + " " * 5000},
]


@pytest.mark.parametrize("form", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_parameters_get_an_oauth_error(
    http: httpx.Client, register: Registrar, frontend: Registered, form: dict[str, str]
) -> None:
    gateway = exchanger(register, "gateway", accept_audiences=[ORDERS], txn_tokens=True)
    token = own_token(http, frontend, resource=ORDERS)
    response = exchange(http, gateway, form.pop("subject_token", token), **form)
    assert response.status_code in (400, 401), response.text
    assert response.json()["error"] in {
        "invalid_request",
        "invalid_grant",
        "invalid_scope",
        "invalid_target",
        "unauthorized_client",
    }


def test_an_id_token_grants_only_what_its_user_consented_to(
    http: httpx.Client, register: Registrar, settings: Settings
) -> None:
    """Case 135: the client is registered for orders:read and orders:write, the user consented
    to orders:read; the exchange must not hand the client orders:write as that user."""
    service = exchanger(register, "service", subject_types=["id_token"])
    as_id = {"subject_token_type": ID_TOKEN_TYPE}
    token = _id_token(settings, service.client_id, "reader")
    refused(exchange(http, service, token, scope="orders:write", **as_id), "invalid_scope")
    default = exchange(http, service, token, **as_id)
    assert default.status_code == 200, default.text
    assert verified(http, default.json()["access_token"], settings.issuer)[1]["scope"] == (
        "orders:read"
    )
    unconsented = _id_token(settings, service.client_id, "stranger", consent=None)
    refused(exchange(http, service, unconsented, scope="orders:read", **as_id), "invalid_scope")


def test_a_delegated_token_cannot_be_the_actor(
    http: httpx.Client, register: Registrar, frontend: Registered
) -> None:
    """Case 136: a delegated token (sub: the user, act: the service) as actor_token would name
    the user as the one acting, and pass an actor allowlist naming the user."""
    orders = exchanger(register, "orders", accept_audiences=[ORDERS], actors=[frontend.client_id])
    user_token = own_token(http, frontend, resource=ORDERS)
    helper = exchanger(register, "helper", accept_audiences=[ORDERS])
    delegated = exchange(
        http,
        helper,
        user_token,
        actor_token=own_token(http, helper),
        actor_token_type=ACCESS_TOKEN_TYPE,
    )
    assert delegated.status_code == 200, delegated.text
    # The delegated token is meant for ORDERS, which the orders client accepts.
    as_actor = {
        "actor_token": delegated.json()["access_token"],
        "actor_token_type": ACCESS_TOKEN_TYPE,
    }
    refused(exchange(http, orders, own_token(http, orders), **as_actor), "invalid_request")
    # the user's own token still acts, as the allowlist says
    plain = {"actor_token": user_token, "actor_token_type": ACCESS_TOKEN_TYPE}
    assert exchange(http, orders, own_token(http, orders), **plain).status_code == 200
