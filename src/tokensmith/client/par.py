"""Pushed authorization requests, the client's side (RFC 9126).

The authorization request goes to the issuer's ``pushed_authorization_request_endpoint`` first,
as a form from the client (authenticated as at the token endpoint); the browser is then sent
only ``client_id`` and the ``request_uri`` the issuer answered (§4), so the request can be
neither read nor altered on its way. A client pushes when the issuer's metadata requires it
(``require_pushed_authorization_requests``, §5), and a confidential one whenever it is offered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from tokensmith.client.discovery import ServerMetadata
from tokensmith.client.errors import ClientError
from tokensmith.client.tokens import Form, post_form, post_form_async

__all__ = ["by_reference", "par_endpoint", "push", "push_async"]

_WHAT = "the pushed authorization request endpoint"
_MAX_REQUEST_URI = 1024


def par_endpoint(metadata: ServerMetadata, *, whenever_offered: bool = False) -> str | None:
    """Where to push this sign-in's request, or None to send it in the browser's URL."""
    endpoint = metadata.document.get("pushed_authorization_request_endpoint")
    if not isinstance(endpoint, str):  # a URL member: discovery checked it when present
        return None
    required = metadata.document.get("require_pushed_authorization_requests") is True
    return endpoint if required or whenever_offered else None


def push(
    http: httpx.Client, endpoint: str, form: Form, *, headers: Mapping[str, str] | None = None
) -> str:
    """Push the request (§2.1); its ``request_uri``, or a ClientError."""
    return _request_uri(post_form(http, endpoint, form, headers=headers, what=_WHAT, expect=201))


async def push_async(
    http: httpx.AsyncClient,
    endpoint: str,
    form: Form,
    *,
    headers: Mapping[str, str] | None = None,
) -> str:
    body = await post_form_async(http, endpoint, form, headers=headers, what=_WHAT, expect=201)
    return _request_uri(body)


def by_reference(authorization_endpoint: str, client_id: str, request_uri: str) -> str:
    """The URL the browser is sent to: the pushed request by reference (§4)."""
    query = urlencode({"client_id": client_id, "request_uri": request_uri})
    return f"{authorization_endpoint}{'&' if '?' in authorization_endpoint else '?'}{query}"


def _request_uri(body: Mapping[str, Any]) -> str:
    uri = body.get("request_uri")
    if not isinstance(uri, str) or not uri.isprintable() or not 0 < len(uri) <= _MAX_REQUEST_URI:
        raise ClientError(f"{_WHAT} answered without a usable request_uri")
    return uri
