"""Token exchange (RFC 8693) through a running server: real HTTP, real storage, a real API key.

The tokens it issues are checked as a resource server would, with PyJWT and the published JWKS.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import jwt as pyjwt
import pytest

from tests.oauth.conftest import Registered, Registrar
from tests.oauth.test_audit_events import events, named
from tokensmith.apikeys.lifecycle import NewApiKey
from tokensmith.oauth.clients import NewClient
from tokensmith.oauth.exchange_policy import (
    ACCESS_TOKEN_TYPE,
    API_KEY_TOKEN_TYPE,
    ID_TOKEN_TYPE,
    TOKEN_EXCHANGE_GRANT,
    TXN_TOKEN_TYPE_URN,
)
from tokensmith.runtime.services import open_services
from tokensmith.settings import Settings

ORDERS = "https://orders.example.com"
BILLING = "https://billing.example.com"
TRUST = "https://trust.example"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Keys are re-read on every use, so a revocation made by this test is seen at once.
    return settings.model_copy(update={"txn_token_audience": TRUST, "api_key_max_staleness": 0.0})


def exchanger(register: Registrar, name: str, **policy: Any) -> Registered:
    return register(
        NewClient(
            name,
            grant_types=(TOKEN_EXCHANGE_GRANT, "client_credentials"),
            scope="orders:read orders:write",
            allowed_resources=(ORDERS,),
            token_exchange=policy,
        )
    )


@pytest.fixture
def frontend(register: Registrar) -> Registered:
    """Gets tokens for the orders API with client_credentials, which the exchanges trade."""
    return register(
        NewClient(
            "frontend",
            grant_types=("client_credentials",),
            scope="orders:read orders:write",
            allowed_resources=(ORDERS,),
        )
    )


def post(http: httpx.Client, client: Registered, **form: Any) -> httpx.Response:
    assert client.secret is not None
    return http.post("/token", data=form, auth=(client.client_id, client.secret))


def own_token(http: httpx.Client, client: Registered, **form: str) -> str:
    response = post(http, client, grant_type="client_credentials", **form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def exchange(http: httpx.Client, client: Registered, token: str, **form: Any) -> httpx.Response:
    return post(
        http,
        client,
        grant_type=TOKEN_EXCHANGE_GRANT,
        subject_token=token,
        subject_token_type=form.pop("subject_token_type", ACCESS_TOKEN_TYPE),
        **form,
    )


def verified(http: httpx.Client, token: str, audience: str) -> tuple[dict[str, Any], Any]:
    jwks = pyjwt.PyJWKSet.from_dict(http.get("/jwks").json())
    header = pyjwt.get_unverified_header(token)
    key = next(k for k in jwks.keys if k.key_id == header["kid"])
    claims = pyjwt.decode(token, key.key, algorithms=[key.algorithm_name], audience=audience)
    return header, claims


def refused(response: httpx.Response, error: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


def test_impersonation_delegation_and_a_chain(
    http: httpx.Client, register: Registrar, frontend: Registered
) -> None:
    orders = exchanger(register, "orders", accept_audiences=[ORDERS], audiences=[BILLING])
    billing = exchanger(register, "billing", accept_audiences=[BILLING])
    user_token = own_token(http, frontend, resource=ORDERS)

    swapped = exchange(http, orders, user_token, audience=BILLING, scope="orders:read")
    assert swapped.status_code == 200, swapped.text
    body = swapped.json()
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE and body["token_type"] == "Bearer"
    assert "refresh_token" not in body
    header, claims = verified(http, body["access_token"], BILLING)
    assert header["typ"] == "at+jwt"
    assert claims["sub"] == frontend.client_id
    assert claims["client_id"] == orders.client_id
    assert claims["scope"] == "orders:read"
    assert "act" not in claims

    actor = own_token(http, orders)
    delegated = exchange(
        http,
        orders,
        user_token,
        audience=BILLING,
        actor_token=actor,
        actor_token_type=ACCESS_TOKEN_TYPE,
    )
    assert delegated.status_code == 200, delegated.text
    _, claims = verified(http, delegated.json()["access_token"], BILLING)
    assert claims["act"] == {"sub": orders.client_id, "client_id": orders.client_id}

    chained = exchange(
        http,
        billing,
        delegated.json()["access_token"],
        actor_token=own_token(http, billing),
        actor_token_type=ACCESS_TOKEN_TYPE,
    )
    assert chained.status_code == 200, chained.text
    _, claims = verified(http, chained.json()["access_token"], BILLING)
    assert claims["sub"] == frontend.client_id
    assert claims["act"]["sub"] == billing.client_id
    assert claims["act"]["act"]["sub"] == orders.client_id


def test_refusals_in_the_protocols_format(
    http: httpx.Client, register: Registrar, frontend: Registered, native_app: Registered
) -> None:
    orders = exchanger(register, "orders", accept_audiences=[ORDERS])
    token = own_token(http, frontend, resource=ORDERS, scope="orders:read")
    refused(exchange(http, orders, token, scope="orders:read orders:write"), "invalid_scope")
    refused(exchange(http, orders, token, audience=BILLING), "invalid_target")
    refused(exchange(http, orders, token, resource="https://evil.example.com"), "invalid_target")
    refused(exchange(http, orders, token, subject_token_type="urn:x"), "invalid_request")
    refused(exchange(http, orders, token, subject_token_type=ID_TOKEN_TYPE), "invalid_request")
    refused(exchange(http, orders, "garbage"), "invalid_grant")
    refused(post(http, orders, grant_type=TOKEN_EXCHANGE_GRANT), "invalid_request")
    refused(exchange(http, orders, token, actor_token=token), "invalid_request")
    # a token of a client it does not serve
    stranger = exchanger(register, "stranger")
    refused(exchange(http, stranger, token), "invalid_grant")
    # revoked by its holder
    assert frontend.secret is not None
    http.post("/revoke", data={"token": token}, auth=(frontend.client_id, frontend.secret))
    refused(exchange(http, orders, token), "invalid_grant")
    # a public client may not exchange (nor register for it)
    public = http.post(
        "/token",
        data={
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "client_id": native_app.client_id,
            "subject_token": token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
        },
    )
    assert public.status_code in (400, 401)
    assert public.json()["error"] == "unauthorized_client"
    with pytest.raises(ValueError, match="public"):
        register(NewClient("spa", is_public=True, grant_types=(TOKEN_EXCHANGE_GRANT,)))


def create_key(settings: Settings, **fields: Any) -> tuple[str, str]:
    async def create() -> tuple[str, str]:
        services = await open_services(settings)
        try:
            new = NewApiKey(name="exporter", owner="team-billing", **fields)
            issued = await services.key_manager.create(new, "test")
            return issued.key, issued.record.key_id
        finally:
            await services.close()

    return asyncio.run(create())


def change_key(settings: Settings, key_id: str, how: str) -> None:
    async def change() -> None:
        services = await open_services(settings)
        try:
            if how == "revoke":
                await services.key_manager.revoke(key_id, "test")
            else:  # a rotation without grace ends the old key now: it has expired
                await services.key_manager.rotate(key_id, "test", grace=0)
        finally:
            await services.close()

    asyncio.run(change())


def test_an_api_key_for_a_five_minute_jwt(
    http: httpx.Client, register: Registrar, settings: Settings
) -> None:
    service = exchanger(register, "exporter", subject_types=["api_key"])
    key, key_id = create_key(
        settings, scope="orders:read orders:write", audiences=(ORDERS, BILLING)
    )
    response = exchange(
        http, service, key, subject_token_type=API_KEY_TOKEN_TYPE, scope="orders:read"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_in"] == 300 and body["issued_token_type"] == ACCESS_TOKEN_TYPE
    header, claims = verified(http, body["access_token"], ORDERS)
    assert header["typ"] == "at+jwt"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["sub"] == "team-billing"
    assert claims["api_key_id"] == key_id
    assert claims["client_id"] == service.client_id
    assert claims["scope"] == "orders:read"
    assert claims["aud"] == [ORDERS, BILLING]
    secret_part = key.rsplit("_", 1)[-1]
    payload = base64.urlsafe_b64decode(body["access_token"].split(".")[1] + "==")
    assert secret_part not in payload.decode() and key not in json.dumps(body)

    narrowed = exchange(http, service, key, subject_token_type=API_KEY_TOKEN_TYPE, audience=ORDERS)
    assert verified(http, narrowed.json()["access_token"], ORDERS)[1]["aud"] == ORDERS
    wide = exchange(http, service, key, subject_token_type=API_KEY_TOKEN_TYPE, scope="admin")
    refused(wide, "invalid_scope")
    elsewhere = exchange(
        http, service, key, subject_token_type=API_KEY_TOKEN_TYPE, audience="https://x.example"
    )
    refused(elsewhere, "invalid_target")
    # a client whose policy has no API-key subjects may not trade one
    other = exchanger(register, "other")
    refused(exchange(http, other, key, subject_token_type=API_KEY_TOKEN_TYPE), "invalid_request")
    refused(
        exchange(http, service, key[:-1] + "x", subject_token_type=API_KEY_TOKEN_TYPE),
        "invalid_grant",
    )

    change_key(settings, key_id, "revoke")
    refused(exchange(http, service, key, subject_token_type=API_KEY_TOKEN_TYPE), "invalid_grant")
    trail = named(events(settings, {"token.exchanged"}), "token.exchanged")
    assert any(e.detail.get("api_key_id") == key_id for e in trail)
    assert all(key not in repr(e) and secret_part not in repr(e) for e in trail)


def test_expired_and_address_bound_keys_are_refused(
    http: httpx.Client, register: Registrar, settings: Settings
) -> None:
    service = exchanger(register, "exporter", subject_types=["api_key"])
    key, key_id = create_key(settings, scope="orders:read")
    assert exchange(http, service, key, subject_token_type=API_KEY_TOKEN_TYPE).status_code == 200
    change_key(settings, key_id, "expire")
    refused(exchange(http, service, key, subject_token_type=API_KEY_TOKEN_TYPE), "invalid_grant")
    elsewhere, _ = create_key(settings, scope="orders:read", allowed_cidrs=("10.0.0.0/8",))
    refused(
        exchange(http, service, elsewhere, subject_token_type=API_KEY_TOKEN_TYPE), "invalid_grant"
    )


def test_a_transaction_token(
    http: httpx.Client, register: Registrar, frontend: Registered, settings: Settings
) -> None:
    gateway = exchanger(register, "gateway", accept_audiences=[ORDERS], txn_tokens=True)
    token = own_token(http, frontend, resource=ORDERS)
    response = exchange(
        http,
        gateway,
        token,
        requested_token_type=TXN_TOKEN_TYPE_URN,
        audience=TRUST,
        scope="orders:read",
        request_context=json.dumps({"req_ip": "198.51.100.4"}),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["issued_token_type"] == TXN_TOKEN_TYPE_URN and body["token_type"] == "N_A"
    assert body["expires_in"] == 60
    header, claims = verified(http, body["access_token"], TRUST)
    assert header["typ"] == "txntoken+jwt"
    assert claims["iss"] == settings.issuer
    assert claims["sub_id"] == {"format": "opaque", "id": frontend.client_id}
    assert claims["purp"] == "orders:read" and claims["rctx"] == {"req_ip": "198.51.100.4"}
    assert isinstance(claims["txn"], str) and claims["exp"] - claims["iat"] == 60
    # a client without the right
    plain = exchanger(register, "plain", accept_audiences=[ORDERS])
    refused(
        exchange(http, plain, token, requested_token_type=TXN_TOKEN_TYPE_URN), "unauthorized_client"
    )


def test_exchanges_are_audited(
    http: httpx.Client, register: Registrar, frontend: Registered, settings: Settings
) -> None:
    orders = exchanger(register, "orders", accept_audiences=[ORDERS])
    token = own_token(http, frontend, resource=ORDERS)
    assert exchange(http, orders, token, scope="orders:read").status_code == 200
    refused(exchange(http, orders, token, scope="admin"), "invalid_scope")
    found = named(events(settings, {"token.exchanged", "token.refused"}), "token.exchanged")
    ok = [e for e in found if e.outcome == "success"]
    assert ok and ok[0].subject == frontend.client_id and ok[0].client_id == orders.client_id
    assert ok[0].detail["scope"] == "orders:read" and ok[0].detail["audience"] == ORDERS
    assert all(token not in json.dumps(e.detail) for e in found)


def test_an_opaque_delegated_token_is_introspected_with_its_actor(
    http: httpx.Client, register: Registrar, frontend: Registered
) -> None:
    orders = register(
        NewClient(
            "orders",
            grant_types=(TOKEN_EXCHANGE_GRANT, "client_credentials"),
            scope="orders:read",
            access_token_format="opaque",
            token_exchange={"accept_audiences": [ORDERS]},
        )
    )
    user_token = own_token(http, frontend, resource=ORDERS, scope="orders:read")
    delegated = exchange(
        http,
        orders,
        user_token,
        actor_token=own_token(http, orders),
        actor_token_type=ACCESS_TOKEN_TYPE,
    )
    assert delegated.status_code == 200, delegated.text
    value = delegated.json()["access_token"]
    assert value.startswith("tsat_")
    assert orders.secret is not None
    seen = http.post("/introspect", data={"token": value}, auth=(orders.client_id, orders.secret))
    body = seen.json()
    assert body["active"] is True and body["sub"] == frontend.client_id
    assert body["act"] == {"sub": orders.client_id, "client_id": orders.client_id}
    assert body["aud"] == ORDERS and body["client_id"] == orders.client_id
