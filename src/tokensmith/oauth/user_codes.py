"""User codes for the device authorization grant (RFC 8628 §6.1).

Eight characters from twenty consonants (BCDFGHJKLMNPQRSTVWXZ: no vowels, so no words, and none
that reads like a digit), 20^8 = 2^34.5 codes, shown as ``XXXX-XXXX``. What a person types is
accepted in either case, with dashes and spaces ignored (§6.1: "SHOULD ... compare case-
insensitively", and "ignore ... dash"). The code is short enough to type, so guessing it is bounded
by its lifetime and the lockout of code entry (``web/device.py``), not by its length alone.
"""

from __future__ import annotations

import secrets

from tokensmith.core.secrets import keyed_hash

__all__ = [
    "USER_CODE_ALPHABET",
    "USER_CODE_LENGTH",
    "format_user_code",
    "new_user_code",
    "normalise_user_code",
    "user_code_fingerprint",
]

USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
_ALLOWED = frozenset(USER_CODE_ALPHABET)
_IGNORED = str.maketrans("", "", "- \t")
_LONGEST_TYPED = 32  # what a person might type around eight characters; more is not a code


def new_user_code() -> str:
    """A fresh code from the CSPRNG, in its canonical (stored) form: eight letters, no dash."""
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


def format_user_code(code: str) -> str:
    """``BCDFGHJK`` as the person sees it: ``BCDF-GHJK``."""
    half = USER_CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


def normalise_user_code(typed: str) -> str | None:
    """The canonical code for what a person typed, or None if it cannot be a user code."""
    if len(typed) > _LONGEST_TYPED:
        return None
    code = typed.translate(_IGNORED).upper()
    if len(code) != USER_CODE_LENGTH or not set(code) <= _ALLOWED:
        return None
    return code


def user_code_fingerprint(pepper: bytes, code: str) -> str:
    """A name for a user code in audit records. Keyed: 2^34.5 codes are few enough that a plain
    hash's fingerprint could be reversed by trying them all."""
    return keyed_hash(pepper, "fingerprint:" + code).hex()[:16]
