"""Redirect URI rules: what may be registered, and what matches at the authorization endpoint.

Registration (RFC 9700 §2.1, RFC 8252 §7) accepts only what ``core.redirect_uris`` parses: https,
plain http on a loopback address, or a reverse-domain private-use scheme; no fragment, wildcard,
user information or dot segment.

Matching (RFC 9700 §4.1.3) is exact string comparison, after the presented URI has passed the same
parser as registration. The one exception is RFC 8252 §7.3: the port of a loopback IP literal
(``127.0.0.1``, ``[::1]``) may be anything, because a native app listens on a port the operating
system picks. ``localhost`` gets no such leeway: RFC 8252 §8.3 recommends against it (the name is
resolved, and need not resolve to this machine), so a ``localhost`` URI matches only byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokensmith.core.redirect_uris import PLAIN_HTTP_HOSTS, RedirectURI, parse_redirect_uri

__all__ = ["LOOPBACK_HOSTS", "matches_registered", "proves_client", "validate_redirect_uri"]

LOOPBACK_HOSTS = PLAIN_HTTP_HOSTS


def validate_redirect_uri(uri: str) -> str:
    """Return the URI unchanged if it may be registered; raise ValueError saying why not."""
    parse_redirect_uri(uri)
    return uri


def matches_registered(presented: str, registered: Iterable[str]) -> bool:
    """Whether a presented redirect URI names one of the registered ones; never raises."""
    try:
        parsed = parse_redirect_uri(presented)
    except ValueError:
        return False  # what registration refuses never matches, even if it was stored earlier
    candidates = tuple(registered)
    if presented in candidates:
        return True
    return parsed.is_loopback_ip and any(_same_but_port(parsed, uri) for uri in candidates)


def proves_client(uri: str) -> bool:
    """Whether a code sent to ``uri`` can reach only the client it is registered to: an https
    URI, whose host is the client's. A loopback port or a private-use scheme can be claimed by
    any app on the device (RFC 8252 §8.6, §8.4), so it proves nothing."""
    try:
        return parse_redirect_uri(uri).scheme == "https"
    except ValueError:
        return False


def _same_but_port(presented: RedirectURI, registered: str) -> bool:
    try:
        theirs = parse_redirect_uri(registered)
    except ValueError:
        return False
    # Both strings are exactly their parts, so this compares every byte except the port.
    return theirs.is_loopback_ip and theirs.without_port() == presented.without_port()
