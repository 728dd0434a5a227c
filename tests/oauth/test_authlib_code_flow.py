"""Interop: Authlib's OAuth 2 client runs the code flow with PKCE through our real login form,
refreshes with rotation, and validates the ID token with Authlib's own OIDC validator."""

from __future__ import annotations

import secrets

import pytest
import requests
from authlib.integrations.base_client.errors import OAuthError as OAuth2Error
from authlib.integrations.requests_client import OAuth2Session

from tests.oauth.browser import Browser
from tests.oauth.conftest import Registered
from tests.support import ServerThread

pytestmark = pytest.mark.backends("sqlite", "postgresql")


def metadata(server: ServerThread) -> dict[str, str]:
    return dict(
        requests.get(server.base_url + "/.well-known/openid-configuration", timeout=10).json()
    )


@pytest.mark.usefixtures("alice")
def test_public_native_app_code_flow_with_pkce(
    server: ServerThread, native_app: Registered
) -> None:
    meta = metadata(server)
    redirect_uri = "http://127.0.0.1:53682/callback"  # any loopback port (RFC 8252 §7.3)
    client = OAuth2Session(
        native_app.client_id,
        redirect_uri=redirect_uri,
        scope="openid api:read",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )

    outcome = Browser(server.base_url).authorize(url)
    assert outcome.location.startswith(redirect_uri + "?")
    assert outcome.query["state"] == state
    assert outcome.query["iss"] == meta["issuer"]  # RFC 9207

    token = client.fetch_token(
        meta["token_endpoint"], authorization_response=outcome.location, code_verifier=verifier
    )
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "api:read openid"
    assert token["refresh_token"].startswith("tsrt_")
    validate_id_token(meta, token, native_app.client_id, nonce)


@pytest.mark.usefixtures("alice")
def test_confidential_web_app_refresh_rotation_and_reuse(
    server: ServerThread, web_app: Registered
) -> None:
    meta = metadata(server)
    client = OAuth2Session(
        web_app.client_id,
        web_app.secret,
        redirect_uri="https://app.example.com/callback",
        scope="openid api:read",
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(48)
    url, _ = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce="n-0S6"
    )
    outcome = Browser(server.base_url).authorize(url)
    first = client.fetch_token(
        meta["token_endpoint"], authorization_response=outcome.location, code_verifier=verifier
    )
    validate_id_token(meta, first, web_app.client_id, "n-0S6")

    second = client.refresh_token(meta["token_endpoint"], refresh_token=first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    narrowed = client.refresh_token(
        meta["token_endpoint"], refresh_token=second["refresh_token"], scope="api:read"
    )
    assert narrowed["scope"] == "api:read"

    with pytest.raises(OAuth2Error) as reuse:
        client.refresh_token(meta["token_endpoint"], refresh_token=first["refresh_token"])
    assert reuse.value.error == "invalid_grant"
    # Reuse revoked the whole family: the newest refresh token and the access tokens are dead too.
    with pytest.raises(OAuth2Error):
        client.refresh_token(meta["token_endpoint"], refresh_token=narrowed["refresh_token"])
    rs = OAuth2Session(web_app.client_id, web_app.secret)
    for token in (first, second, narrowed):
        assert rs.introspect_token(
            meta["introspection_endpoint"], token=token["access_token"]
        ).json() == {"active": False}


def validate_id_token(
    meta: dict[str, str], token: dict[str, object], client_id: str, nonce: str
) -> None:
    """joserfc checks the signature against our published JWKS; Authlib's OIDC validator the claims."""
    from authlib.oidc.core import CodeIDToken
    from joserfc import jwt
    from joserfc.jwk import KeySet

    jwks = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    decoded = jwt.decode(str(token["id_token"]), jwks, algorithms=["ES256"])
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options={
            "iss": {"essential": True, "value": meta["issuer"]},
            "aud": {"essential": True, "value": client_id},
        },
        params={"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]},
    )
    claims.validate()  # iss, aud, exp, iat, nonce, at_hash, azp, auth_time
    assert claims["amr"] == ["pwd"]
    assert isinstance(claims["auth_time"], int)
