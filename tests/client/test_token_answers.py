"""What a token endpoint (or a device authorization endpoint) may answer that the kit must not
believe or repeat: an error body quoting the secret it was sent, an error code that is no code, an
unsupported token type, a missing or absurd ``expires_in`` or ``interval``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tokensmith.client import ClientError, ServerRefused, SessionExpired
from tokensmith.client.device import DeviceAuthorization
from tokensmith.client.tokens import post_form, token_from_response

REFRESH = "rt-9f8e7d6c5b4a3928171605f4e3d2c1b0a9f8e7d6"
URL = "https://auth.example.com/token"


def answering(status: int, body: dict[str, Any]) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=json.dumps(body).encode())

    return httpx.Client(transport=httpx.MockTransport(answer))


def refused(description: str, error: str = "invalid_grant") -> ServerRefused:
    body = {"error": error, "error_description": description}
    form = {"grant_type": "refresh_token", "refresh_token": REFRESH, "client_id": "cli"}
    with answering(400, body) as http, pytest.raises(ServerRefused) as raised:
        post_form(http, URL, form)
    return raised.value


@pytest.mark.parametrize(
    "description",
    [
        f"the refresh token {REFRESH} is not known",
        "x" * 190 + REFRESH,  # a secret across the cut at 200 characters
        "token tsrt_abcdefghijklmnopqrstuvwxyz0123 was revoked",
        "bad token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",
    ],
)
def test_an_error_body_quoting_a_secret_never_puts_it_in_the_exception(description: str) -> None:
    error = refused(description)
    assert isinstance(error, SessionExpired) and error.error == "invalid_grant"
    text = str(error) + repr(error) + repr(error.args)
    for secret in (REFRESH[:12], "abcdefghijklmnop", "eyJzdWIiOiJhbGljZSJ9", "c2lnbmF0dXJl"):
        assert secret not in text
    assert "redacted]" in text


@pytest.mark.parametrize(
    "code", ["invalid\ngrant", 'in"valid', "in\\valid", "x" * 65, "", REFRESH + "\u00e9"]
)
def test_an_error_code_that_is_no_code_is_not_repeated(code: str) -> None:
    error = refused("nothing", error=code)
    assert error.error is None and str(error) == "the token endpoint answered 400"


@pytest.mark.parametrize("kind", ["mac", "DPoP", "N_A", "bearer "])
def test_a_token_type_other_than_bearer_is_refused(kind: str) -> None:
    with pytest.raises(ClientError, match="unsupported token type"):
        token_from_response({"access_token": "at", "token_type": kind, "expires_in": 60}, 1000)


@pytest.mark.parametrize(
    ("expires_in", "lifetime"),
    [(None, 300), (True, 300), ("3600", 300), (-5, 300), (0, 300), (3600.0, 300),
     (3600, 3600), (10**9, 86400), (10**400, 86400)],
)  # fmt: skip
def test_expires_in_missing_or_absurd(expires_in: object, lifetime: int) -> None:
    body: dict[str, object] = {"access_token": "at", "token_type": "Bearer"}
    if expires_in is not None:
        body["expires_in"] = expires_in
    token = token_from_response(body, 1000)
    assert token.expires_at - token.issued_at == lifetime
    assert not token.refresh_due(1000)


def test_a_device_answer_with_an_absurd_interval_or_lifetime_is_bounded() -> None:
    body = {"device_code": "dc", "user_code": "ABCD-EFGH", "expires_in": 10**20,
            "verification_uri": "https://auth.example.com/device", "interval": 10**20}  # fmt: skip
    grant = DeviceAuthorization.from_response(body, 1000)
    assert grant.interval == 60 and grant.expires_at == 1000 + 3600


class Endless:
    """A body that never ends (up to 1 GiB), counting what was read of it."""

    def __init__(self, start: bytes) -> None:
        self.start = start
        self.sent = 0

    def __iter__(self) -> Any:
        yield self.start
        for _ in range(16 * 1024):
            self.sent += 65536
            yield b" " * 65536


def endless(status: int, start: bytes) -> tuple[httpx.Client, Endless]:
    body = Endless(start)
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=body))
    return httpx.Client(transport=transport), body


def test_an_endless_token_answer_is_read_only_up_to_its_limit() -> None:
    http, body = endless(200, b'{"access_token": "at", "token_type": "Bearer"')
    with http, pytest.raises(ServerRefused, match="answered 200"):
        post_form(http, URL, {"grant_type": "refresh_token", "refresh_token": REFRESH})
    assert body.sent <= 128 * 1024


def test_endless_metadata_is_read_only_up_to_its_limit() -> None:
    from tokensmith.client import DiscoveryError, discover

    http, body = endless(200, b'{"issuer": "https://auth.example.com"')
    with http, pytest.raises(DiscoveryError, match="too large"):
        discover("https://auth.example.com", http=http)
    assert body.sent <= 512 * 1024


def test_an_endless_key_set_is_read_only_up_to_its_limit() -> None:
    from tokensmith.client.errors import IdTokenError
    from tokensmith.client.id_tokens import fetch_keys

    http, body = endless(200, b'{"keys": [')
    with http, pytest.raises(IdTokenError, match="cannot be read"):
        fetch_keys(http, "https://auth.example.com/jwks")
    assert body.sent <= 512 * 1024
