"""The shape of an API key, checkable offline.

``tsk_<env>_<id>_<secret><checksum>``, for example ``tsk_live_4Qz0…_…``:

- ``tsk_`` is a fixed prefix that secret scanners match, and ``env`` is ``live`` or ``test``;
- ``id`` is 12 base62 characters, the public identifier a lookup uses (one indexed query);
- ``secret`` is 43 base62 characters from ``secrets`` (43 * log2(62) = 256.03 bits);
- ``checksum`` is the CRC32 of everything before it, as 6 base62 characters.

The checksum is not security: it lets a scanner, a client library or this server reject a mistyped
or invented key without a database query. Everything here is pure, and parsing is cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, Literal

from tokensmith.core.checksum import CHECKSUM_LENGTH, crc32_base62, random_base62

__all__ = [
    "KEY_LENGTH",
    "KEY_PATTERN",
    "ApiKeyEnvironment",
    "ParsedApiKey",
    "generate_api_key",
    "parse_api_key",
]

ApiKeyEnvironment = Literal["live", "test"]

_ID_LENGTH: Final = 12
_SECRET_LENGTH: Final = 43
_CHECKSUM_LENGTH: Final = CHECKSUM_LENGTH
# What a scanner would register; the server parses with the same expression.
KEY_PATTERN: Final = re.compile(
    rf"tsk_(live|test)_([0-9A-Za-z]{{{_ID_LENGTH}}})_"
    rf"([0-9A-Za-z]{{{_SECRET_LENGTH}}})([0-9A-Za-z]{{{_CHECKSUM_LENGTH}}})"
)
KEY_LENGTH: Final = len("tsk_live__") + _ID_LENGTH + _SECRET_LENGTH + _CHECKSUM_LENGTH


@dataclass(frozen=True, slots=True)
class ParsedApiKey:
    env: ApiKeyEnvironment
    key_id: str
    text: str = field(repr=False)  # the whole key: what is hashed and compared

    def __str__(self) -> str:
        return f"tsk_{self.env}_{self.key_id}_…"


def generate_api_key(env: ApiKeyEnvironment) -> ParsedApiKey:
    key_id = random_base62(_ID_LENGTH)
    body = f"tsk_{env}_{key_id}_{random_base62(_SECRET_LENGTH)}"
    return ParsedApiKey(env, key_id, body + crc32_base62(body))


def parse_api_key(text: str) -> ParsedApiKey | None:
    """The key if ``text`` has the shape and a matching checksum; None otherwise."""
    if len(text) != KEY_LENGTH:
        return None
    match = KEY_PATTERN.fullmatch(text)
    if match is None:
        return None
    if crc32_base62(text[:-_CHECKSUM_LENGTH]) != match.group(4):
        return None
    env: ApiKeyEnvironment = "live" if match.group(1) == "live" else "test"
    return ParsedApiKey(env, match.group(2), text)


_checksum = crc32_base62  # the name the tests forge keys with
