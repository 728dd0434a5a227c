"""Whom a credential is for: the one audience rule every credential path of the guard shares.

RFC 9068 §4 and RFC 7662 §2.2: a resource server MUST refuse a token whose ``aud`` does not name
it, whether it validated the token itself or asked the issuer. RFC 8725 §3.9: a token meant for
another service is a token that service could replay here. An API key created with audiences
has them in its verify answer (``aud``) and is held to them; a key created without any is bound
to no resource, names none, and passes (docs/api-keys.md).

A refusal says which audience the token has and which this resource expects; both are the
issuer's own names (after the signature check, or from introspection), never the token itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokensmith.guard.errors import InvalidToken
from tokensmith.guard.principal import Principal

__all__ = ["audience_of", "check_audience", "describe_refusal"]

_SHOWN = 3  # audiences named in a refusal, each cut to _SHOWN_CHARS
_SHOWN_CHARS = 80


def audience_of(aud: object) -> tuple[str, ...]:
    """``aud`` as a tuple: a string, or a list of strings (RFC 7519 §4.1.3); anything else ()."""
    if type(aud) is str:
        return (aud,)
    if isinstance(aud, list) and all(type(item) is str for item in aud):
        return tuple(aud)
    return ()


def check_audience(principal: Principal, expected: Iterable[str]) -> Principal:
    """The principal if it names one of ``expected``; InvalidToken otherwise.

    An empty ``expected`` is a configuration mistake, refused here rather than read as "any".
    """
    wanted = frozenset(expected)
    if principal.kind == "api_key" and not principal.audience:
        return principal  # keys are not bound to a resource; see the module docstring
    if not wanted or wanted.isdisjoint(principal.audience):
        raise InvalidToken(describe_refusal(principal.audience, wanted))
    return principal


def describe_refusal(have: Iterable[str], expected: Iterable[str]) -> str:
    names = _names(sorted(expected))
    got = tuple(have)
    if not got:
        return f"the access token names no audience; this resource expects {names}"
    return f"the access token's audience is {_names(got)}; this resource expects {names}"


def _names(audiences: Iterable[str]) -> str:
    listed = list(audiences)
    # Printable ASCII only and cut short: the description goes into a header.
    shown = [_printable(a) for a in listed[:_SHOWN]]
    more = f" and {len(listed) - _SHOWN} more" if len(listed) > _SHOWN else ""
    if not shown:
        return "an audience (none is configured)"
    return ("one of " if len(listed) > 1 else "") + ", ".join(shown) + more


def _printable(audience: str) -> str:
    text = "".join(c if " " <= c <= "~" and c not in "\"\\'" else "?" for c in audience)
    if len(text) > _SHOWN_CHARS:
        text = text[: _SHOWN_CHARS - 3] + "..."
    return f"'{text}'"
