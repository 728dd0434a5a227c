"""PKCE (RFC 7636), S256 only: plain and a missing challenge are refused (RFC 9700 §2.1.1)."""

from __future__ import annotations

import re

from tokensmith.core.secrets import constant_time_equals
from tokensmith.core.secrets import pkce_s256 as s256
from tokensmith.errors import InvalidGrant, InvalidRequest

__all__ = ["check_verifier", "s256", "validate_challenge", "verify"]

# RFC 7636 §4.1: 43-128 unreserved characters; §4.2: a challenge is the 43-character S256 digest.
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def validate_challenge(challenge: str | None, method: str | None) -> str:
    if challenge is None:
        raise InvalidRequest("code_challenge is required (PKCE with S256)")
    if method != "S256":
        raise InvalidRequest("code_challenge_method must be S256")
    if not _CHALLENGE.match(challenge):
        raise InvalidRequest("code_challenge is not an S256 challenge")
    return challenge


def check_verifier(verifier: str | None) -> str:
    """RFC 7636 §4.1's form alone, so a malformed verifier is refused before the code is spent."""
    if verifier is None or not _VERIFIER.match(verifier):
        raise InvalidGrant("code_verifier is missing or malformed")
    return verifier


def verify(verifier: str | None, challenge: str) -> None:
    verifier = check_verifier(verifier)
    if not constant_time_equals(s256(verifier), challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge")
