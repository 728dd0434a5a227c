"""Redirect URI rules at registration (RFC 9700 §4.1, RFC 8252 §7).

A registered redirect URI is an absolute URI with no fragment and no wildcard. It is https, or
plain http only on a loopback address (a native app's local listener), or a private-use scheme in
reverse-domain form (RFC 8252 §7.1). Matching at the authorization endpoint is byte for byte,
except the port of a loopback URI (RFC 8252 §7.3).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["LOOPBACK_HOSTS", "host_of", "validate_redirect_uri"]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "[::1]", "localhost"})
_PRIVATE_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+$")
_MAX_LENGTH = 2000


def validate_redirect_uri(uri: str) -> str:
    """Return the URI unchanged if it may be registered; raise ValueError saying why not."""
    if not uri or len(uri) > _MAX_LENGTH:
        raise ValueError("a redirect URI is 1 to 2000 characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F or c in "\\<>\"'`{}|^" for c in uri):
        raise ValueError("a redirect URI has no spaces, control or unsafe characters")
    if "#" in uri:
        raise ValueError("a redirect URI has no fragment")
    if "*" in uri:
        raise ValueError("a redirect URI has no wildcard")
    parts = urlsplit(uri)
    scheme = parts.scheme
    if scheme in ("javascript", "data", "vbscript", "file"):
        raise ValueError(f"the {scheme}: scheme is never a redirect URI")
    if scheme in ("http", "https"):
        if not parts.hostname or parts.username is not None or "@" in parts.netloc:
            raise ValueError("a redirect URI names a host and carries no user information")
        if scheme == "http" and host_of(parts.netloc) not in LOOPBACK_HOSTS:
            raise ValueError("plain http is allowed only for a loopback address")
        if "/../" in parts.path or parts.path.endswith("/..") or "%2e" in parts.path.lower():
            raise ValueError("a redirect URI has no dot segments")
        return uri
    if _PRIVATE_SCHEME.match(scheme):
        return uri
    raise ValueError("a redirect URI is https, loopback http, or a reverse-domain private scheme")


def host_of(netloc: str) -> str:
    """The host part of a netloc, brackets kept for IPv6; user information stays attached."""
    if netloc.startswith("["):
        return netloc[: netloc.index("]") + 1] if "]" in netloc else netloc
    return netloc.rsplit(":", 1)[0] if ":" in netloc else netloc
