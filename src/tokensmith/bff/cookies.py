"""The BFF's two cookies, read strictly and written with every protection a browser offers.

``__Host-`` names (RFC 6265bis §4.1.3.2): Secure, Path=/, no Domain, so no subdomain or plain-http
page can plant or overwrite them; HttpOnly, so no script reads them; SameSite=Lax, so a
cross-site subrequest never carries them (top-level navigations do: the issuer's redirect back to
the callback must). Browsers treat http://localhost as a secure context and accept them there.
A cookie header naming one of ours twice is ambiguous (a planted copy), and names none.
"""

from __future__ import annotations

__all__ = ["LOGIN_COOKIE", "SESSION_COOKIE", "clear_cookie", "read_cookie", "set_cookie"]

SESSION_COOKIE = "__Host-tokensmith-session"
LOGIN_COOKIE = "__Host-tokensmith-login"
_MAX_HEADER = 8192


def read_cookie(header: str | None, name: str) -> str | None:
    """The one value of cookie ``name`` in a Cookie header; None if absent or given twice."""
    if not header or len(header) > _MAX_HEADER:
        return None
    found = None
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            if found is not None:
                return None
            found = value
    return found


def set_cookie(name: str, value: str, max_age: int) -> str:
    return f"{name}={value}; Max-Age={max_age}; Path=/; Secure; HttpOnly; SameSite=Lax"


def clear_cookie(name: str) -> str:
    return f"{name}=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"
