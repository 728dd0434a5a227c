"""A request's declared ``Content-Length`` against a body limit, before the body is read."""

from __future__ import annotations

__all__ = ["declared_too_large"]


def declared_too_large(declared: str | None, limit: int) -> bool:
    """The header is there and is not a number of at most ``limit`` bytes.

    ASCII digits only: ``str.isdigit()`` is also true of "²" (latin-1, so possible in a header),
    which ``int()`` refuses: a 500 instead of the refusal.
    """
    return declared is not None and not (
        declared.isascii() and declared.isdigit() and int(declared) <= limit
    )
