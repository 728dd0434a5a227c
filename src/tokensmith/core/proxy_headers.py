"""Which headers cross a reverse proxy of ours (the gateway, the BFF): hop-by-hop ones never
(RFC 9110 §7.6.1), the outside credential never, and nothing a caller could use to pose as the
proxy (SECURITY.md case 51). A proxy names what else it keeps back (the BFF: the browser's
cookies one way, the upstream's Set-Cookie the other).

Names are compared in one spelling: lower case, every character but a letter or a digit read as
``-``. CGI, WSGI (``HTTP_X_INTERNAL_USER``), PHP and many frameworks map ``-`` and ``_`` (some
also ``.``) to one character, so ``x_internal_user`` or ``X.Forwarded.For`` would reach the
upstream as the very header we strip (case 65). Beyond that, no name with ``_`` crosses at all
(nginx's default, ``underscores_in_headers off``): the upstream cannot tell it from the
``-`` spelling of a header we do not know it trusts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["downstream_headers", "upstream_headers"]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# The credential (replaced by the internal JWT), and what only the gateway may assert.
_NEVER_UPSTREAM = frozenset(
    {
        b"authorization",
        b"x-api-key",
        b"dpop",  # the proof is for this hop's URL and token (RFC 9449), meaningless beyond it
        b"host",
        b"content-length",
        b"forwarded",
        b"x-real-ip",
        b"x-request-id",
        b"x-principal",
        b"x-user",
        b"x-client-id",
        # A transaction token (draft-ietf-oauth-transaction-tokens' Txn-Token header) or id is
        # the gateway's to assert, in the token it signs or obtains.
        b"txn-token",
        b"txn-id",
        # Another path than the one routed and scope-checked here: IIS, Symfony and Laravel
        # serve X-Original-URL / X-Rewrite-URL instead of the request line (SECURITY.md 65).
        b"x-original-url",
        b"x-rewrite-url",
        b"x-original-uri",
        # Another client address than the X-Forwarded-For we write: what client-IP helpers
        # (Rails, request-ip, django-ipware, CDN conventions) read first.
        b"client-ip",
        b"true-client-ip",
        b"x-client-ip",
        b"x-cluster-client-ip",
        b"x-originating-ip",
        b"cf-connecting-ip",
        b"fastly-client-ip",
    }
)
_NEVER_UPSTREAM_PREFIXES = (b"x-forwarded-", b"x-internal-", b"x-tokensmith-")
# What an upstream says about itself, or its secrets, stays inside.
_NEVER_DOWNSTREAM = frozenset({b"server", b"x-powered-by", b"content-length"})


_NOT_ALNUM = re.compile(rb"[^a-z0-9]")


def _spelling(name: bytes) -> bytes:
    """The one spelling of a header name that upstreams may conflate with others."""
    return _NOT_ALNUM.sub(b"-", name.lower())


def _named_by_connection(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    named: set[bytes] = set()
    for name, value in headers:
        if _spelling(name) == b"connection":
            named.update(_spelling(part.strip()) for part in value.split(b","))
    return named


def _crosses(name: bytes, dropped: set[bytes] | frozenset[bytes]) -> bool:
    if b"_" in name:
        return False
    spelling = _spelling(name)
    return (
        spelling not in HOP_BY_HOP
        and spelling not in _NEVER_UPSTREAM
        and spelling not in dropped
        and not spelling.startswith(_NEVER_UPSTREAM_PREFIXES)
    )


def upstream_headers(
    headers: list[tuple[bytes, bytes]],
    internal_token: str,
    request_id: str,
    client_ip: str,
    proto: str,
    also_drop: frozenset[bytes] = frozenset(),
) -> list[tuple[bytes, bytes]]:
    dropped = _named_by_connection(headers) | also_drop
    kept = [(name, value) for name, value in headers if _crosses(name, dropped)]
    kept += [
        (b"authorization", f"Bearer {internal_token}".encode("ascii")),
        (b"x-request-id", request_id.encode("ascii")),
        (b"x-forwarded-for", client_ip.encode("latin-1")),
        (b"x-forwarded-proto", proto.encode("ascii")),
    ]
    return kept


def downstream_headers(
    headers: list[tuple[bytes, bytes]],
    request_id: str,
    also_drop: frozenset[bytes] = frozenset(),
) -> list[tuple[bytes, bytes]]:
    dropped = _named_by_connection(headers) | also_drop
    kept = [
        (name, value)
        for name, value in headers
        if (lowered := name.lower()) not in HOP_BY_HOP
        and lowered not in _NEVER_DOWNSTREAM
        and lowered not in dropped
        and lowered != b"x-request-id"
    ]
    kept.append((b"x-request-id", request_id.encode("ascii")))
    return kept
