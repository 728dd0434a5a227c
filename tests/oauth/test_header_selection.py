"""Which header the client pipeline reads: a credential header sent twice is refused, and an
empty one is still a credential (web/endpoints.py, oauth/pipeline.py).

A proxy, a WAF or the gateway in front may read the first of two Authorization headers and the
server the last: the request each of them judges would not be the same request. The guard
already refuses two credentials ("send one credential, not two"); so does the server.
"""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.oauth.conftest import Registered


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize("right_first", [True, False])
def test_two_authorization_headers_are_refused_whichever_comes_first(
    http: httpx.Client, machine: Registered, right_first: bool
) -> None:
    assert machine.secret is not None
    right, wrong = basic(machine.client_id, machine.secret), basic(machine.client_id, "tscs_x")
    pair = [right, wrong] if right_first else [wrong, right]
    headers = [*FORM.items(), *(("authorization", value) for value in pair)]
    for path, body in (("/token", "grant_type=client_credentials"), ("/introspect", "token=x")):
        answer = http.post(path, content=body, headers=headers)
        assert answer.status_code == 400, (path, answer.text)
        assert answer.json()["error"] == "invalid_request"
        assert "authorization" in answer.json()["error_description"].lower()
        assert "access_token" not in answer.text


def test_two_api_key_headers_are_refused(http: httpx.Client) -> None:
    headers = [("x-api-key", "tsk_live_a"), ("x-api-key", "tsk_live_b")]
    answer = http.post("/api-keys/verify", headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


def test_an_empty_authorization_header_at_key_verification_is_a_failed_client_login(
    http: httpx.Client,
) -> None:
    """It says a client is calling, with nothing: refused as invalid_client (as before the
    pipeline), never taken for an anonymous caller."""
    answer = http.post("/api-keys/verify", headers={"authorization": "", "x-api-key": "tsk_x"})
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    assert answer.headers["www-authenticate"].startswith("Basic ")
