"""What every sign-in ends with: the token response checked, the session stored, a ``Session``.

Shared by the browser flow (``login.py``) and the device flow (``device.py``). With ``openid``
in the scope an ID token is required and validated (``id_tokens.py``); the subject and the
claims ``whoami`` shows come from it. Nothing is stored until every check passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from tokensmith.client.discovery import ServerMetadata
from tokensmith.client.dpop import DpopKey
from tokensmith.client.errors import IdTokenError, LoginError
from tokensmith.client.id_tokens import fetch_keys, validate_id_token
from tokensmith.client.session import Session, expiry_of
from tokensmith.client.storage import SHOWN_CLAIMS, SessionStore, StoredSession
from tokensmith.client.tokens import AccessToken, token_from_response
from tokensmith.core.clock import Clock

__all__ = ["finish_sign_in"]


def finish_sign_in(
    metadata: ServerMetadata,
    client_id: str,
    body: Mapping[str, Any],
    *,
    scope: str,
    nonce: str | None,
    store: SessionStore,
    http: httpx.Client,
    clock: Clock,
    home: Path | None,
    close_http: bool = False,
    dpop: DpopKey | None = None,
) -> Session:
    """``close_http``: the session owns ``http`` from now on (closes it with itself). ``dpop``:
    the key the token request was proved with, stored with the session when the server bound
    the tokens to it."""
    now = clock.now()
    token = token_from_response(body, now, dpop=dpop is not None)
    if token.token_type != "DPoP":
        dpop = None  # the server did not bind: nothing to keep
    refresh_token = body.get("refresh_token")
    if not isinstance(refresh_token, str) or not refresh_token:
        raise LoginError("the server issued no refresh token; a session cannot be kept")
    claims = _id_token_claims(metadata, client_id, body, scope, nonce, http, now)
    claims = {**_userinfo(metadata, http, token, dpop, claims.get("sub")), **claims}
    granted = body.get("scope")
    stored = StoredSession(
        issuer=metadata.issuer,
        client_id=client_id,
        refresh_token=refresh_token,
        scope=granted if isinstance(granted, str) else scope,
        subject=claims.get("sub"),
        claims={k: claims[k] for k in SHOWN_CLAIMS if k in claims},
        expires_at=expiry_of(dict(body), now),
        signed_in_at=now,
        dpop_key=dpop.to_stored() if dpop is not None else None,
    )
    store.save(stored)
    session = Session(
        metadata, stored, store, home=home, http=http, clock=clock, close_http=close_http
    )
    session.adopt(stored, token)
    if dpop is not None:
        session.dpop = dpop  # the same object: the nonces it learned signing in stay with it
    return session


def _id_token_claims(
    metadata: ServerMetadata,
    client_id: str,
    body: Mapping[str, Any],
    scope: str,
    nonce: str | None,
    http: httpx.Client,
    now: int,
) -> dict[str, Any]:
    id_token = body.get("id_token")
    if id_token is None:
        if "openid" in scope.split():
            raise IdTokenError("the server answered an openid sign-in without an ID token")
        return {}
    if not isinstance(id_token, str) or metadata.jwks_uri is None:
        raise IdTokenError("the ID token cannot be validated (no jwks_uri in the metadata)")
    keys = fetch_keys(http, metadata.jwks_uri)
    return validate_id_token(
        id_token,
        keys,
        issuer=metadata.issuer,
        client_id=client_id,
        algorithms=metadata.id_token_algs,
        nonce=nonce,
        now=now,
    )


def _userinfo(
    metadata: ServerMetadata,
    http: httpx.Client,
    token: AccessToken,
    dpop: DpopKey | None,
    subject: object,
) -> dict[str, Any]:
    """The name and email ``whoami`` shows, which OIDC Core §5.4 returns from userinfo rather
    than in the ID token; only for the ID token's own subject, and only what is shown."""
    endpoint = metadata.userinfo_endpoint
    if endpoint is None or not isinstance(subject, str):
        return {}
    headers = {"authorization": f"Bearer {token.value}"}
    if dpop is not None:
        headers = {
            "authorization": f"DPoP {token.value}",
            "dpop": dpop.proof("GET", endpoint, access_token=token.value),
        }
    try:
        response = http.get(endpoint, headers=headers)
        body = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return {}
    if not isinstance(body, dict) or body.get("sub") != subject:
        return {}
    return {k: body[k] for k in SHOWN_CLAIMS if k in body and k != "sub"}
