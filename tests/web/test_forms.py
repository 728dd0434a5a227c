"""Request bodies are read size first, whatever the ASGI server let through."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request

from tokensmith.errors import InvalidRequest, PayloadTooLarge
from tokensmith.web.forms import read_form


def request(content_length: bytes) -> Request:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"a=b", "more_body": False}

    headers = [
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", content_length),
    ]
    return Request({"type": "http", "method": "POST", "headers": headers}, receive)


@pytest.mark.parametrize("declared", [b"\xb2", b"\xb9\xb2", b"-1", b"+3", b" 3", b"3.0"])
def test_a_content_length_that_is_not_ascii_digits_is_refused_not_a_crash(declared: bytes) -> None:
    # "²" is latin-1, so a header can carry it, and str.isdigit() says yes; int() raises.
    with pytest.raises(PayloadTooLarge):
        asyncio.run(read_form(request(declared), 1024))


def test_a_true_content_length_is_read() -> None:
    assert asyncio.run(read_form(request(b"3"), 1024)).get("a") == "b"


def test_a_client_that_hangs_up_mid_body_is_refused_not_a_server_error() -> None:
    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": "POST",
        "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
    }
    with pytest.raises(InvalidRequest, match="cut off"):
        asyncio.run(read_form(Request(scope, receive), 1024))
