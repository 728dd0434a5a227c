"""The BFF's own answers: JSON, the error page, redirects, and the headers every response gets.

Every response carries a strict Content-Security-Policy (scripts, styles and fetches from this
origin only; no framing; no plugins), ``nosniff``, ``Referrer-Policy: no-referrer`` and, under
``/bff/``, ``Cache-Control: no-store``. The proxy's answers get them too, in place of whatever the
upstream said about them.
"""

from __future__ import annotations

import html
import json
from typing import Any

from tokensmith.core.asgi import Message, Receive, Scope, Send
from tokensmith.errors import ERROR_CODES

__all__ = [
    "SECURITY_HEADERS",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "error_page",
    "guarded_send",
    "redirect",
    "respond",
    "send_error",
    "send_json",
]


_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", _CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
OURS = frozenset(name for name, _ in SECURITY_HEADERS) | {b"cache-control"}


def guarded_send(send: Send, no_store: bool) -> Send:
    """``send`` that puts our security headers on the response, replacing any of the same name."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in OURS]
            headers += SECURITY_HEADERS
            if no_store:
                headers.append((b"cache-control", b"no-store"))
            message = {**message, "headers": headers}
        await send(message)

    return sending


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    headers: list[tuple[str, str]] | None = None,
) -> None:
    raw = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers or []]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send, status: int, payload: dict[str, Any], headers: list[tuple[str, str]] | None = None
) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    await respond(send, status, body, "application/json", headers)


async def send_error(
    send: Send,
    code: str,
    description: str,
    headers: list[tuple[str, str]] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """A JSON refusal: its status and wire code from ``ERROR_CODES``, like every other one."""
    row = ERROR_CODES[code]
    body = {**(extra or {}), "error": row.sent_as or code, "error_description": description}
    await send_json(send, row.status, body, headers)


async def redirect(send: Send, location: str, headers: list[tuple[str, str]]) -> None:
    await respond(send, 302, b"", "text/plain", [("location", location), *headers])


async def error_page(
    send: Send, status: int, message: str, headers: list[tuple[str, str]] | None = None
) -> None:
    """A plain page (no script) that says what went wrong and offers to sign in again."""
    text = html.escape(message)
    body = (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Sign-in failed</title>"
        f'<h1>Sign-in failed</h1><p>{text}</p><p><a href="/bff/login">Sign in again</a></p>'
        "</html>"
    ).encode()
    await respond(send, status, body, "text/html; charset=utf-8", headers)
