"""Which headers cross the gateway: hop-by-hop ones never (RFC 9110 §7.6.1), the outside
credential never, and nothing a caller could use to pose as the gateway (SECURITY.md case 51)."""

from __future__ import annotations

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
        b"host",
        b"content-length",
        b"forwarded",
        b"x-real-ip",
        b"x-request-id",
        b"x-principal",
        b"x-user",
        b"x-client-id",
    }
)
_NEVER_UPSTREAM_PREFIXES = (b"x-forwarded-", b"x-internal-", b"x-tokensmith-")
# What an upstream says about itself, or its secrets, stays inside.
_NEVER_DOWNSTREAM = frozenset({b"server", b"x-powered-by", b"content-length"})


def _named_by_connection(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    named: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named.update(part.strip().lower() for part in value.split(b","))
    return named


def upstream_headers(
    headers: list[tuple[bytes, bytes]],
    internal_token: str,
    request_id: str,
    client_ip: str,
    proto: str,
) -> list[tuple[bytes, bytes]]:
    dropped = _named_by_connection(headers)
    kept = [
        (name, value)
        for name, value in headers
        if (lowered := name.lower()) not in HOP_BY_HOP
        and lowered not in _NEVER_UPSTREAM
        and lowered not in dropped
        and not lowered.startswith(_NEVER_UPSTREAM_PREFIXES)
    ]
    kept += [
        (b"authorization", f"Bearer {internal_token}".encode("ascii")),
        (b"x-request-id", request_id.encode("ascii")),
        (b"x-forwarded-for", client_ip.encode("latin-1")),
        (b"x-forwarded-proto", proto.encode("ascii")),
    ]
    return kept


def downstream_headers(
    headers: list[tuple[bytes, bytes]], request_id: str
) -> list[tuple[bytes, bytes]]:
    dropped = _named_by_connection(headers)
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
