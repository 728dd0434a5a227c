"""Who is really calling: the socket peer, or what trusted proxies say (RFC 7239, X-Forwarded-*).

A forwarding header is only as good as the hop that wrote it. Every proxy appends the address it
received the request from, so the list is read right to left: starting at the socket peer, each
hop that is a declared proxy vouches for the entry to its left, and the first address that is not
a declared proxy is the client. Entries further left were written by the client itself and are
never read. Without declared proxies (the default) no header is read at all.

One function decides (``resolve_source``) and one applies it to an ASGI scope (``apply_source``),
called first by the server's envelope and by the gateway alike. A malformed entry ends the walk
at the last hop that is known: a broken header never fails a request and never names a client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tokensmith.core.addresses import parse_address

__all__ = [
    "NO_PROXIES",
    "Network",
    "ProxyHeader",
    "Source",
    "TrustedProxies",
    "apply_source",
    "parse_networks",
    "resolve_source",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ProxyHeader = Literal["x-forwarded-for", "forwarded"]
Scope = MutableMapping[str, Any]

_MAX_HOPS = 32  # a longer chain is not a real deployment; the walk stops there
_MAX_HEADER = 4096  # bytes of one forwarding header that are looked at
_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True, slots=True)
class Source:
    host: str | None
    scheme: str


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """The declared proxies and which header they write (only one: the other is the client's)."""

    networks: tuple[Network, ...] = ()
    header: ProxyHeader = "x-forwarded-for"

    def trusts(self, host: str | None) -> bool:
        address = parse_address(host) if host else None
        return address is not None and any(address in net for net in self.networks)


NO_PROXIES = TrustedProxies()


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """IPs and CIDRs (``10.0.0.0/8``, ``::1``); raises ValueError naming the first bad entry."""
    networks: list[Network] = []
    for entry in entries:
        text = entry.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or CIDR range") from None
    return tuple(networks)


def resolve_source(
    peer: str | None, scheme: str, headers: Sequence[tuple[bytes, bytes]], trusted: TrustedProxies
) -> Source:
    """The client's address and the scheme it used, per the declared proxies."""
    if not trusted.networks or not trusted.trusts(peer):
        return Source(peer, scheme)
    if trusted.header == "forwarded":
        hops, schemes = _forwarded_hops(headers)
    else:
        hops, schemes = _xff_hops(headers)
    client, chosen = peer, len(hops)  # len(hops): the socket peer itself
    for index in reversed(range(max(0, len(hops) - _MAX_HOPS), len(hops))):
        hop = hops[index]
        if hop is None:  # garbage where a trusted proxy should have written: stop here
            break
        client, chosen = hop, index
        if not trusted.trusts(hop):
            break
    return Source(client, _scheme(schemes, chosen, len(hops), scheme))


def _scheme(schemes: list[str | None], index: int, count: int, default: str) -> str:
    # Forwarded: proto= sits in the element of the hop chosen; otherwise the right-most value.
    if len(schemes) == count and 0 <= index < count:
        chosen = schemes[index]
    else:
        chosen = schemes[-1] if schemes else None
    return chosen if chosen in _SCHEMES else default


def _values(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> list[str]:
    """Every comma-separated entry of every ``name`` line, in order. Over the size cap, only the
    right-most ``_MAX_HEADER`` bytes: the left is what the client wrote, and the entries our
    proxies appended are on the right. Ignoring the whole header would let a client pad it past
    the cap to be taken for the proxy itself (its address range, its lockout). The entry the cut
    falls in is left empty, so the walk stops there."""
    lines = [value for key, value in headers if key.lower() == name]
    joined = b",".join(lines)
    cut = len(joined) > _MAX_HEADER
    if cut:
        joined = joined[-_MAX_HEADER:]
    entries = [part.strip() for part in joined.decode("latin-1").split(",")]
    if cut:
        entries[0] = ""
    return entries


def _xff_hops(headers: Sequence[tuple[bytes, bytes]]) -> tuple[list[str | None], list[str | None]]:
    hops = [_host(entry) for entry in _values(headers, b"x-forwarded-for")]
    # One value per proxy too, but most edges send just one: the right-most is the nearest's.
    protos = _values(headers, b"x-forwarded-proto")
    return hops, [protos[-1].lower()] if protos else []


def _forwarded_hops(
    headers: Sequence[tuple[bytes, bytes]],
) -> tuple[list[str | None], list[str | None]]:
    hops: list[str | None] = []
    schemes: list[str | None] = []
    for element in _values(headers, b"forwarded"):
        pairs = _pairs(element)
        hops.append(_host(pairs["for"]) if "for" in pairs else None)
        schemes.append(pairs.get("proto", "").lower() or None)
    return hops, schemes


def _pairs(element: str) -> dict[str, str]:
    """RFC 7239 §4: ``for=192.0.2.1;proto=https``, values optionally quoted."""
    pairs: dict[str, str] = {}
    for pair in element.split(";"):
        name, sep, value = pair.partition("=")
        if sep:
            pairs[name.strip().lower()] = value.strip().strip('"')
    return pairs


def _host(entry: str) -> str | None:
    """The address in one hop entry: ``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``, ``::1``;
    None for anything else (``unknown``, obfuscated names, garbage)."""
    if entry.startswith("["):
        inside, bracket, port = entry[1:].partition("]")
        if not bracket or (port and not (port.startswith(":") and port[1:].isdigit())):
            return None
        candidate = inside
    elif entry.count(":") == 1:
        candidate = entry.partition(":")[0]
    else:
        candidate = entry
    address = parse_address(candidate)
    return str(address) if address is not None else None


def apply_source(scope: Scope, trusted: TrustedProxies) -> None:
    if not trusted.networks:
        return
    client = scope.get("client")
    peer = client[0] if client else None
    source = resolve_source(peer, scope.get("scheme", "http"), scope["headers"], trusted)
    if source.host != peer:
        scope["client"] = (source.host, 0)
    scope["scheme"] = source.scheme
