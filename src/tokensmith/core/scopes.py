"""Scope strings (RFC 6749 §3.3): space-delimited scope-tokens of %x21 / %x23-5B / %x5D-7E."""

from __future__ import annotations

import re

__all__ = ["format_scope", "parse_scope"]

_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,128}$")
MAX_SCOPES = 64


def parse_scope(text: str | None) -> frozenset[str]:
    """Split and validate; raises ValueError naming the bad token."""
    if not text:
        return frozenset()
    tokens = text.split(" ")
    if len(tokens) > MAX_SCOPES:
        raise ValueError(f"at most {MAX_SCOPES} scopes")
    for token in tokens:
        if not _SCOPE_TOKEN.match(token):
            raise ValueError(f"{token!r} is not a valid scope")
    return frozenset(tokens)


def format_scope(scopes: frozenset[str] | set[str]) -> str:
    return " ".join(sorted(scopes))
