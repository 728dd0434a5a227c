"""Base62 secrets with a CRC32 checksum: the shape of API keys and client secrets.

The checksum is not security. It lets a secret scanner, a client library or this server tell a
real secret from a mistyped or invented one offline, before any hashing or database work.
"""

from __future__ import annotations

import secrets
import zlib
from typing import Final

__all__ = ["BASE62", "CHECKSUM_LENGTH", "base62_digits", "crc32_base62", "random_base62"]

BASE62: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CHECKSUM_LENGTH: Final = 6  # 62**6 > 2**32: every CRC32 value fits


# Every two-digit base62 string, in order: three lookups spell a checksum (62**6 > 2**32).
_PAIRS: Final = tuple(a + b for a in BASE62 for b in BASE62)
_PAIR = len(_PAIRS)


def crc32_base62(body: str) -> str:
    """The CRC32 of ``body`` as ``CHECKSUM_LENGTH`` base62 digits."""
    return base62_digits(zlib.crc32(body.encode("ascii")))


def base62_digits(value: int) -> str:
    """A 32-bit ``value`` as ``CHECKSUM_LENGTH`` base62 digits, most significant first."""
    high, rest = divmod(value, _PAIR * _PAIR)
    middle, low = divmod(rest, _PAIR)
    return _PAIRS[high] + _PAIRS[middle] + _PAIRS[low]


def random_base62(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))
