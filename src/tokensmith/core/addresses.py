"""Client addresses as the protocol sees them."""

from __future__ import annotations

import functools
import ipaddress

__all__ = ["IPV6_BUCKET_PREFIX", "address_bucket", "parse_address"]

# The block one IPv6 host is usually given (RFC 6177, SLAAC): counted address by address, one
# machine could rotate through 2^64 of them.
IPV6_BUCKET_PREFIX = 64


def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address in ``text``, an IPv4-mapped IPv6 one (``::ffff:a.b.c.d``) as the IPv4 address
    it carries, so ranges and networks match however a dual-stack socket reported it; None if
    ``text`` is no address."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=4096)  # parsed at every attempt; callers repeat
def address_bucket(text: str) -> str:
    """What lockouts, rate limits and holds count an address as: an IPv4 address (mapped or
    not) as itself, an IPv6 one as its /64, and anything else as given (capped)."""
    address = parse_address(text)
    if address is None:
        return text[:64]
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_BUCKET_PREFIX), strict=False))
    return str(address)
