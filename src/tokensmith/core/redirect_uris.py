"""The one strict parser for redirect URIs (RFC 3986 §3, RFC 9700 §2.1 and §4.1.3, RFC 8252 §7).

Registration and every later comparison (the authorization endpoint, RP-initiated logout) run a
URI through ``parse_redirect_uri``. A presented URI that registration would refuse therefore never
matches anything, and a URI that parses is exactly ``scheme://host[:port]rest`` with no part
normalised away: what is compared is what the browser will be sent to.

Accepted: ``https://host[:port]/path[?query]``; ``http://`` only on ``127.0.0.1``, ``[::1]`` or
``localhost``; or a private-use scheme in reverse-domain form (RFC 8252 §7.1). Refused, each with a
message: non-ASCII, whitespace, control and unsafe characters, fragments, wildcards, upper-case
schemes, user information, malformed hosts, brackets or ports, stray ``%``, dot segments (plain
or percent-encoded) and an empty query.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

__all__ = ["LOOPBACK_IPS", "PLAIN_HTTP_HOSTS", "RedirectURI", "parse_redirect_uri"]

# RFC 8252 §7.3: loopback IP literals, whose port the authorization server must let vary.
LOOPBACK_IPS = frozenset({"127.0.0.1", "[::1]"})
# Where plain http is tolerated: a native app's own listener (RFC 8252 §7.3, §8.3).
PLAIN_HTTP_HOSTS = LOOPBACK_IPS | {"localhost"}

_MAX_LENGTH = 2000
_MAX_HOST = 253
_UNSAFE = frozenset("\\<>\"'`{}|^")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_PRIVATE_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+")
_NEVER = frozenset({"javascript", "data", "vbscript", "file", "blob", "about"})
# host is an IPv6 literal in brackets or a DNS name / IPv4 address; the port has no leading zero.
_AUTHORITY = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>[1-9][0-9]*))?")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True, slots=True)
class RedirectURI:
    """The parts of a URI that parsed; ``str()`` gives back exactly the parsed string."""

    scheme: str
    host: str | None  # None for a private-use scheme; IPv6 keeps its brackets
    port: str | None  # the digits as written, if any
    rest: str  # after the authority (http/https) or after ``scheme:`` (private-use)

    def __str__(self) -> str:
        if self.host is None:
            return f"{self.scheme}:{self.rest}"
        return f"{self.scheme}://{self.host}{self.port_part}{self.rest}"

    @property
    def port_part(self) -> str:
        return f":{self.port}" if self.port is not None else ""

    @property
    def is_loopback_ip(self) -> bool:
        """A plain-http loopback IP literal: the only kind whose port may vary (RFC 8252 §7.3)."""
        return self.scheme == "http" and self.host in LOOPBACK_IPS

    def without_port(self) -> str:
        return f"{self.scheme}://{self.host}{self.rest}" if self.host else str(self)


def parse_redirect_uri(uri: str) -> RedirectURI:
    """The URI's parts if it may be registered; ValueError with a reason otherwise."""
    _check_characters(uri)
    scheme, colon, rest = uri.partition(":")
    if not colon or not _SCHEME.fullmatch(scheme):
        raise ValueError("a redirect URI is absolute, with a lower-case scheme")
    if scheme in ("http", "https"):
        return _parse_web(scheme, rest)
    if scheme in _NEVER:
        raise ValueError(f"the {scheme}: scheme is never a redirect URI")
    if _PRIVATE_SCHEME.fullmatch(scheme):
        if not rest:
            raise ValueError("a private-use redirect URI has a path: com.example.app:/callback")
        _check_path(rest)
        return RedirectURI(scheme, None, None, rest)
    raise ValueError("a redirect URI is https, loopback http, or a reverse-domain private scheme")


def _check_characters(uri: str) -> None:
    if not isinstance(uri, str) or not uri or len(uri) > _MAX_LENGTH:
        raise ValueError("a redirect URI is 1 to 2000 characters")
    # A URI is printable ASCII (RFC 3986 §2); anything else is a space, a control character, or
    # a look-alike that a browser might rewrite after we compared.
    if any(not 0x21 <= ord(c) <= 0x7E or c in _UNSAFE for c in uri):
        raise ValueError("a redirect URI has no spaces, control, non-ASCII or unsafe characters")
    if "#" in uri:
        raise ValueError("a redirect URI has no fragment")  # RFC 6749 §3.1.2
    if "*" in uri:
        raise ValueError("a redirect URI has no wildcard")  # RFC 9700 §4.1.3
    if _BAD_PERCENT.search(uri):
        raise ValueError("a % in a redirect URI starts a two-digit hex escape")


def _parse_web(scheme: str, rest: str) -> RedirectURI:
    if not rest.startswith("//"):
        raise ValueError("an http(s) redirect URI names a host: scheme://host/path")
    after = rest[2:]
    cut = min((i for i in (after.find("/"), after.find("?")) if i >= 0), default=len(after))
    authority, tail = after[:cut], after[cut:]
    if "@" in authority:
        raise ValueError("a redirect URI carries no user information")
    match = _AUTHORITY.fullmatch(authority)
    if match is None or (match["port"] is not None and int(match["port"]) > 65535):
        raise ValueError("the host or port of a redirect URI is malformed (a port is 1-65535)")
    host = match["host"]
    _check_host(host)
    if scheme == "http" and host not in PLAIN_HTTP_HOSTS:
        raise ValueError("plain http is allowed only for a loopback address")
    _check_path(tail)
    return RedirectURI(scheme, host, match["port"], tail)


def _check_host(host: str) -> None:
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])  # no zone id, no IPv4 in brackets
        except ValueError:
            raise ValueError("the brackets of a redirect URI hold an IPv6 address") from None
        return
    if len(host) > _MAX_HOST or not all(_LABEL.fullmatch(label) for label in host.split(".")):
        raise ValueError("the host of a redirect URI is a DNS name or an IP address")


def _check_path(tail: str) -> None:
    path, question, query = tail.partition("?")
    if "[" in tail or "]" in tail:
        raise ValueError("brackets belong only around an IPv6 host")
    if question and not query:
        raise ValueError("a redirect URI has no empty query")
    segments = path.split("/")
    if "." in segments or ".." in segments or "%2e" in path.lower():
        raise ValueError("a redirect URI has no dot segments")
