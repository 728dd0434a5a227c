"""Interop: Authlib's OAuth 2 client, unchanged, against a running Tokensmith."""

from __future__ import annotations

import jwt as pyjwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session

from tests.oauth.conftest import Registered, Registrar
from tests.support import ServerThread
from tokensmith.oauth.clients import NewClient
from tokensmith.settings import Settings

pytestmark = pytest.mark.backends("sqlite", "postgresql")


def discover(server: ServerThread) -> dict[str, str]:
    url = server.base_url + "/.well-known/oauth-authorization-server"
    return dict(requests.get(url, timeout=10).json())


def test_client_credentials_introspect_revoke_with_authlib(
    server: ServerThread, machine: Registered, register: Registrar, settings: Settings
) -> None:
    meta = discover(server)
    with OAuth2Session(machine.client_id, machine.secret, scope="api:read") as client:
        token = client.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
        assert token["token_type"] == "Bearer"
        assert token["scope"] == "api:read"
        assert token["expires_at"] > 0  # Authlib computed it from expires_in
        access = token["access_token"]

        jwks = pyjwt.PyJWKSet.from_dict(requests.get(meta["jwks_uri"], timeout=10).json())
        key = jwks.keys[0]
        claims = pyjwt.decode(
            access, key.key, algorithms=[key.algorithm_name], audience=settings.issuer
        )
        assert claims["client_id"] == machine.client_id

        resource = register(NewClient("rs", grant_types=("client_credentials",)))
        with OAuth2Session(resource.client_id, resource.secret) as rs:
            assert (
                rs.introspect_token(meta["introspection_endpoint"], token=access).json()["active"]
                is True
            )
            assert client.revoke_token(meta["revocation_endpoint"], token=access).status_code == 200
            assert rs.introspect_token(meta["introspection_endpoint"], token=access).json() == {
                "active": False
            }


def test_client_secret_post_with_authlib(server: ServerThread, register: Registrar) -> None:
    meta = discover(server)
    poster = register(
        NewClient(
            "poster",
            grant_types=("client_credentials",),
            scope="x",
            auth_method="client_secret_post",
        )
    )
    with OAuth2Session(
        poster.client_id, poster.secret, token_endpoint_auth_method="client_secret_post"
    ) as client:
        token = client.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
        assert token["scope"] == "x"
