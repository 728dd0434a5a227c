"""Whom a credential is for: the one audience rule every credential path of the guard shares.

RFC 9068 §4 and RFC 7662 §2.2: a resource server MUST refuse a token whose ``aud`` does not name
it, whether it validated the token itself or asked the issuer. RFC 8725 §3.9: a token meant for
another service is a token that service could replay here. An API key created with audiences
has them in its verify answer (``aud``) and is held to them; a key created without any is bound
to no resource, names none, and passes (docs/api-keys.md).

A refusal says which audience the credential has, which this API accepts, and how to ask for
the right one (``resource=`` in the token request, ``--audience`` for a key). Audiences are not
secret: they are the issuer's own names (after the signature check, or from introspection), never
the credential itself, and are shown printable-ASCII only, three at most, each cut short.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

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
        kind: Literal["token", "api_key"] = "api_key" if principal.kind == "api_key" else "token"
        raise InvalidToken(describe_refusal(principal.audience, wanted, kind))
    return principal


def describe_refusal(
    have: Iterable[str], expected: Iterable[str], kind: Literal["token", "api_key"] = "token"
) -> str:
    """Which audience the credential has, which this API accepts, and how to get the right one:
    a token requested with ``resource=`` (RFC 8707), a key created with ``--audience``."""
    wanted = sorted(expected)
    got = tuple(have)
    what = "API key" if kind == "api_key" else "access token"
    if got:
        said = f"the {what}'s audience is {_names(got)}; this API accepts {_names(wanted)}"
    else:
        said = f"the {what} names no audience; this API accepts {_names(wanted)}"
    if not wanted:
        return said
    if kind == "api_key":
        option = f"--audience {_printable(wanted[0])}" if len(wanted) == 1 else None
        how = f"with {option}" if option else "for one of them with --audience"
        return f"{said}; use a key created {how}"
    parameter = f"resource={_printable(wanted[0])}" if len(wanted) == 1 else None
    how = f"with {parameter}" if parameter else "for one of them with resource="
    return f"{said}; request a token {how}"


def _names(audiences: Iterable[str]) -> str:
    listed = list(audiences)
    # Printable ASCII only and cut short: the description goes into a header.
    shown = [f"'{_printable(a)}'" for a in listed[:_SHOWN]]
    more = f" and {len(listed) - _SHOWN} more" if len(listed) > _SHOWN else ""
    if not shown:
        return "an audience (none is configured)"
    return ("one of " if len(listed) > 1 else "") + ", ".join(shown) + more


def _printable(audience: str) -> str:
    """Printable ASCII, no quote or backslash (each becomes '?'), at most _SHOWN_CHARS."""
    text = "".join(c if " " < c <= "~" and c not in "\"\\'" else "?" for c in audience)
    if len(text) > _SHOWN_CHARS:
        text = text[: _SHOWN_CHARS - 3] + "..."
    return text
