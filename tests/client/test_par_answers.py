"""What a pushed authorization request endpoint may answer that the kit must not believe: no
request_uri, one that is not text or is absurdly long, a 200 where RFC 9126 §2.2 says 201, an
error quoting the secret it was sent."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tokensmith.client import ClientError, ServerMetadata, ServerRefused
from tokensmith.client.par import by_reference, par_endpoint, push

PAR = "https://auth.example.com/par"
FORM = [("client_id", "cli"), ("client_secret", "tscs_the-secret-never-repeated")]


def answering(status: int, body: dict[str, Any]) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=json.dumps(body).encode())

    return httpx.Client(transport=httpx.MockTransport(answer))


def test_a_request_uri_comes_back_and_names_the_request() -> None:
    uri = "urn:ietf:params:oauth:request_uri:abc"
    with answering(201, {"request_uri": uri, "expires_in": 60}) as http:
        assert push(http, PAR, FORM) == uri
    url = by_reference("https://auth.example.com/authorize", "cli", uri)
    assert url == (
        "https://auth.example.com/authorize?client_id=cli"
        "&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Aabc"
    )


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (201, {"expires_in": 60}),
        (201, {"request_uri": 7}),
        (201, {"request_uri": ""}),
        (201, {"request_uri": "urn:x:" + "a" * 2000}),
        (201, {"request_uri": "urn:x:a\nb"}),
        (200, {"request_uri": "urn:ietf:params:oauth:request_uri:abc"}),
    ],
)
def test_an_unusable_answer_is_refused(status: int, body: dict[str, Any]) -> None:
    with answering(status, body) as http, pytest.raises(ClientError):
        push(http, PAR, FORM)


def test_a_refusal_never_repeats_the_secret() -> None:
    body = {"error": "invalid_client", "error_description": f"bad secret {FORM[1][1]}"}
    with answering(401, body) as http, pytest.raises(ServerRefused) as raised:
        push(http, PAR, FORM)
    assert raised.value.error == "invalid_client" and FORM[1][1] not in str(raised.value)


def test_the_kit_pushes_when_required_and_the_bff_whenever_offered() -> None:
    def metadata(**members: Any) -> ServerMetadata:
        document = {"issuer": "https://auth.example.com", "token_endpoint": PAR, **members}
        return ServerMetadata.from_document("https://auth.example.com", document)

    offered = metadata(pushed_authorization_request_endpoint=PAR)
    assert par_endpoint(offered) is None
    assert par_endpoint(offered, whenever_offered=True) == PAR
    required = metadata(
        pushed_authorization_request_endpoint=PAR, require_pushed_authorization_requests=True
    )
    assert par_endpoint(required) == PAR
    assert par_endpoint(metadata(require_pushed_authorization_requests=True)) is None
