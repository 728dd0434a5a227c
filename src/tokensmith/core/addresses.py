"""Client addresses as the protocol sees them."""

from __future__ import annotations

import ipaddress

__all__ = ["parse_address"]


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
