"""Which scope a request gets (RFC 6749 §3.3, §6): what it asks for, within what may be granted."""

from __future__ import annotations

from tokensmith.core.scopes import parse_scope
from tokensmith.errors import InvalidScope

__all__ = ["narrow_scope"]


def narrow_scope(requested: str | None, allowed: frozenset[str]) -> frozenset[str]:
    """The requested scope, which must lie within ``allowed``; no request means all of it."""
    if requested is None:
        return allowed
    try:
        wanted = parse_scope(requested)
    except ValueError as exc:
        raise InvalidScope(str(exc)) from None
    extra = wanted - allowed
    if extra:
        raise InvalidScope(f"scope {sorted(extra)[0]!r} is not allowed here")
    return wanted
