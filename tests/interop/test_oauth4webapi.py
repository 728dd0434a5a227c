"""oauth4webapi (npm, pinned in node/package-lock.json) against a running Tokensmith: a pushed
authorization request with the code flow and PKCE, and client credentials with DPoP.

The library runs as it would in an app; the person's part (the login and consent pages) is
played by the test's browser, on the real pages.
"""

from __future__ import annotations

import httpx
import jwt

from tests.interop.node_client import NodeScript
from tests.oauth.browser import Browser
from tests.oauth.conftest import Registered
from tests.support import ServerThread

CALLBACK = "https://app.example.com/callback"
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"


def test_a_pushed_request_signs_in_and_the_code_is_exchanged(
    server: ServerThread, http: httpx.Client, web_app: Registered, alice: str
) -> None:
    with NodeScript("par_code_flow.mjs") as script:
        script.send(
            {
                "issuer": server.base_url,
                "client_id": web_app.client_id,
                "client_secret": web_app.secret,
                "redirect_uri": CALLBACK,
                "scope": "openid api:read",
            }
        )
        pushed = script.receive()
        assert pushed["request_uri"].startswith(REQUEST_URI_PREFIX)
        assert pushed["expires_in"] == 60
        assert pushed["authorization_url"].startswith(server.base_url + "/authorize?")
        outcome = Browser(server.base_url).authorize(pushed["authorization_url"])
        script.send({"callback": outcome.location})
        tokens = script.receive()
    assert tokens["token_type"] == "bearer"
    assert tokens["refresh_token"]
    assert tokens["id_token_sub"] == alice
    userinfo = http.get("/userinfo", headers={"authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.status_code == 200 and userinfo.json()["sub"] == alice


def test_client_credentials_with_a_dpop_proof_are_bound_to_its_key(
    server: ServerThread, machine: Registered
) -> None:
    with NodeScript("dpop_client_credentials.mjs") as script:
        script.send(
            {
                "issuer": server.base_url,
                "client_id": machine.client_id,
                "client_secret": machine.secret,
                "scope": "api:read",
            }
        )
        tokens = script.receive()
    assert tokens["token_type"] == "dpop"
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["cnf"]["jkt"] == tokens["jkt"]
