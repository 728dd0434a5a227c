"""Malformed bodies at the token endpoint: refused before any work, in RFC 6749's format."""

from __future__ import annotations

import httpx
import pytest

from tests.oauth.conftest import Registered

# Above storage: SQLite only (the storage suites, and test_authorization, run on both databases).

FORM = {"content-type": "application/x-www-form-urlencoded"}


def post(
    http: httpx.Client,
    machine: Registered,
    body: bytes | str,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    assert machine.secret is not None
    return http.post(
        "/token", content=body, headers=headers or FORM, auth=(machine.client_id, machine.secret)
    )


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("grant_type=client_credentials&grant_type=client_credentials", "repeated"),
        ("grant_type=client_credentials&scope=a%0d%0aX-Injected:%201", "control character"),
        ("grant_type=client_credentials&scope=a%00", "control character"),
        ("grant_type=client_credentials&" + "&".join(f"p{i}=1" for i in range(100)), "parameters"),
        (b"grant_type=client_credentials&scope=\xff\xfe", "UTF-8"),
        ("grant_type=client_credentials&scope=" + "a" * 9000, "too long"),
    ],
)
def test_malformed_forms(
    http: httpx.Client, machine: Registered, body: bytes | str, fragment: str
) -> None:
    response = post(http, machine, body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert fragment in response.json()["error_description"]
    assert "x-injected" not in response.headers


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "multipart/form-data; boundary=x", ""]
)
def test_only_form_bodies(http: httpx.Client, machine: Registered, content_type: str) -> None:
    response = post(
        http, machine, '{"grant_type":"client_credentials"}', {"content-type": content_type}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_oversized_body_is_refused_before_parsing(http: httpx.Client, machine: Registered) -> None:
    response = post(http, machine, "grant_type=client_credentials&x=" + "a" * 70_000)
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"


def test_oversized_body_without_length_is_cut_off(http: httpx.Client, machine: Registered) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(100):
            yield b"a" * 1024

    assert machine.secret is not None
    response = http.post(
        "/token", content=chunks(), headers=FORM, auth=(machine.client_id, machine.secret)
    )
    assert response.status_code == 413


def test_oversized_header_is_refused(http: httpx.Client) -> None:
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"authorization": "Basic " + "A" * 20_000},
    )
    assert response.status_code == 431
    assert response.json()["error"] == "invalid_request"


def test_get_is_not_allowed(http: httpx.Client) -> None:
    response = http.get("/token")
    assert response.status_code == 405
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke", "/jwks", "/authorize"])
def test_our_secrets_are_refused_in_a_query_under_any_name(
    http: httpx.Client, machine: Registered, path: str
) -> None:
    # Case 15's sibling: a URL ends up in logs and Referer headers, whatever the parameter's name.
    assert machine.secret is not None
    secrets = [machine.secret, "tsrt_" + "A" * 43, "tsat_" + "b" * 43, "tsac_" + "c" * 43]
    for value in secrets:
        for name in ("x", "state", "client_secret_hint"):
            response = http.get(path, params={name: value})
            assert response.status_code == 400, (path, name, value[:5])
            assert response.json()["error"] == "invalid_request"
    # Look-alikes that are not our secrets still reach the route.
    assert http.get("/jwks", params={"x": "tscs_short"}).status_code == 200
