"""``WWW-Authenticate`` challenges (RFC 9110 §11.6.1, RFC 6750 §3): the one renderer.

Every challenge Tokensmith sends is built here: Bearer at /userinfo and the admin API, Basic on
``invalid_client``, ApiKey at /api-keys/verify, the guard's and the gateway's Bearer, and DPoP
(RFC 9449 §7.1) when it comes. Whatever a value holds, the header stays one valid line:

- every value is a quoted-string; CR, LF and tab become spaces, other control characters are
  dropped, and anything outside ASCII becomes ``?`` (a header is Latin-1 on the wire, and RFC
  6750 allows only printable ASCII in its values);
- ``error``, ``error_description``, ``error_uri`` and ``scope`` may not hold ``"`` or ``\\`` at
  all (RFC 6750 §3): ``"`` becomes ``'`` and ``\\`` is dropped. Any other value (``realm``,
  ``resource_metadata``, ``charset``, DPoP's ``algs``) escapes them as quoted-pairs;
- each value is capped (``MAX_DESCRIPTION`` for a description, ``MAX_VALUE`` for the rest), so
  no description can grow a header past what a proxy accepts.

Several challenges (Bearer and DPoP, say) go in one header separated by commas
(``join_challenges``), each still a challenge of its own.
"""

from __future__ import annotations

import re

__all__ = ["MAX_DESCRIPTION", "MAX_VALUE", "join_challenges", "render_challenge"]

MAX_DESCRIPTION = 512
MAX_VALUE = 1024

# RFC 9110 §5.6.2: a scheme and a parameter name are tokens.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 6750 §3: these values are restricted to %x20-21 / %x23-5B / %x5D-7E.
_RESTRICTED = frozenset({"error", "error_description", "error_uri", "scope"})
_SPACES = str.maketrans("\t\r\n", "   ")


def render_challenge(
    scheme: str,
    *,
    realm: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
    scope: str | None = None,
    resource_metadata: str | None = None,
    **params: str | None,
) -> str:
    """One challenge: ``scheme`` then its parameters, in this order, each a quoted-string.

    A parameter that is None is left out; ``params`` adds others (``charset="UTF-8"`` for Basic,
    ``algs`` for DPoP) after the standard ones, in the order given.
    """
    if not _TOKEN.fullmatch(scheme):
        raise ValueError(f"{scheme!r} is not an authentication scheme name")
    named = {
        "realm": realm,
        "error": error,
        "error_description": error_description,
        "scope": scope,
        "resource_metadata": resource_metadata,
        **params,
    }
    parts = []
    for name, value in named.items():
        if value is None:
            continue
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"{name!r} is not an auth-param name")
        limit = MAX_DESCRIPTION if name == "error_description" else MAX_VALUE
        parts.append(f'{name}="{_quoted(value, limit, restricted=name in _RESTRICTED)}"')
    return f"{scheme} {', '.join(parts)}" if parts else scheme


def join_challenges(*challenges: str) -> str:
    """Several challenges in one ``WWW-Authenticate`` value (RFC 9110 §11.6.1: ``#challenge``)."""
    return ", ".join(challenges)


def _quoted(value: str, limit: int, *, restricted: bool) -> str:
    """The inside of a quoted-string: printable ASCII only, at most ``limit`` characters of it."""
    text = "".join(_printable(c) for c in value.translate(_SPACES))
    if restricted:
        text = text.replace("\\", "").replace('"', "'")
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    if not restricted:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return text


def _printable(char: str) -> str:
    if " " <= char <= "~":
        return char
    return "" if ord(char) < 0xA0 else "?"  # C0, DEL and C1 controls are dropped
