"""Human durations such as ``90s``, ``15m``, ``12h``, ``30d``, ``2w``."""

from __future__ import annotations

import re

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d{1,9})\s*([smhdw]?)\s*$")


def parse_duration(text: str | int) -> int:
    """Return the number of seconds; a bare number is seconds. Raises ValueError otherwise."""
    if isinstance(text, int):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return text
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (examples: 90s, 15m, 12h, 30d, 2w)")
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]


def format_duration(seconds: int) -> str:
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
