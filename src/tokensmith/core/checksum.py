"""Base62 secrets with a CRC32 checksum: the shape of API keys and client secrets.

The checksum is not security. It lets a secret scanner, a client library or this server tell a
real secret from a mistyped or invented one offline, before any hashing or database work.
"""

from __future__ import annotations

import secrets
import zlib
from typing import Final

__all__ = ["BASE62", "CHECKSUM_LENGTH", "crc32_base62", "random_base62"]

BASE62: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CHECKSUM_LENGTH: Final = 6  # 62**6 > 2**32: every CRC32 value fits


def crc32_base62(body: str) -> str:
    """The CRC32 of ``body`` as ``CHECKSUM_LENGTH`` base62 digits."""
    value = zlib.crc32(body.encode("ascii"))
    digits = []
    for _ in range(CHECKSUM_LENGTH):
        value, rest = divmod(value, 62)
        digits.append(BASE62[rest])
    return "".join(reversed(digits))


def random_base62(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))
