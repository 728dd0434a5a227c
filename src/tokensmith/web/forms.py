"""Reading ``application/x-www-form-urlencoded`` bodies safely: size first, then parse."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

from tokensmith.errors import InvalidRequest, PayloadTooLarge
from tokensmith.oauth.params import MAX_PARAMETERS, Params

__all__ = ["read_form"]

FORM = "application/x-www-form-urlencoded"


async def read_form(request: Request, max_bytes: int) -> Params:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM:
        raise InvalidRequest(f"the request body must be {FORM}")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        raise PayloadTooLarge(f"the request body is larger than {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():  # counted as it arrives: a lying length gains nothing
        body += chunk
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"the request body is larger than {max_bytes} bytes")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_PARAMETERS)
    except UnicodeDecodeError:
        raise InvalidRequest("the request body is not UTF-8") from None
    except ValueError:
        raise InvalidRequest(f"more than {MAX_PARAMETERS} parameters") from None
    return Params(pairs)
