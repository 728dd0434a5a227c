"""Resource indicators (RFC 8707): which resource servers a token is for, i.e. its audience."""

from __future__ import annotations

from urllib.parse import urlsplit

from tokensmith.errors import InvalidTarget
from tokensmith.oauth.clients import Client

__all__ = ["resolve_audience"]


def resolve_audience(requested: tuple[str, ...], client: Client, default: str) -> tuple[str, ...]:
    """The audience for a token: the requested resources if the client may have them."""
    if not requested:
        return (default,)
    allowed = {default, *client.allowed_resources}
    for resource in requested:
        parts = urlsplit(resource)
        # RFC 8707 §2: an absolute URI, and it MUST NOT include a fragment.
        if not parts.scheme or not parts.netloc or "#" in resource:
            raise InvalidTarget("resource must be an absolute URI without a fragment")
        if resource not in allowed:
            raise InvalidTarget("this client may not request tokens for that resource")
    return tuple(dict.fromkeys(requested))
