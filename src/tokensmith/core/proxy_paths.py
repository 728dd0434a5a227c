"""Which request paths a proxy of ours (the gateway, the BFF) forwards: only those every upstream
reads the way we matched.

A route is chosen on the decoded path; the upstream then parses the path again, with its own
rules. Anything two parsers may read differently is refused with 400 rather than normalised,
because a normalisation of ours is one more parser to disagree with (SECURITY.md case 65):

- dot segments in any spelling: ``.``, ``..``, and with parameters (``..;``, ``.;x``, which Tomcat
  and Spring strip before resolving), percent-encoded (``%2e``), double-encoded (``%252e``), or
  as compatibility characters that NFKC folds to dots (U+FF0E, the fullwidth full stop);
- ``;`` anywhere: a matrix parameter hides the rest of a segment from some upstreams and not from
  others (``/orders/admin;x`` is ``/orders/admin`` to Spring, a child of ``/orders`` to us);
- an encoded ``/`` or ``\\``, a raw ``\\`` (a separator to some servers), ``%25`` (a second decode
  would see a new escape), a malformed escape (``%u002e``, ``%zz``);
- an empty segment (``//``), which some upstreams collapse into a path of another route; a single
  trailing ``/`` is allowed;
- control characters.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["path_is_forwardable"]

# Escapes of what must not be hidden from our matching, or of the escape character itself,
# and any "%" not followed by two hex digits.
_BAD_ESCAPE = re.compile(rb"%(?:2e|2f|5c|25|3b|[01][0-9a-f]|7f)|%(?![0-9a-f]{2})", re.IGNORECASE)
_BAD_CHARS = re.compile(r"[\\;%\x00-\x1f\x7f]")
_DOT_SEGMENTS = frozenset({".", ".."})


def path_is_forwardable(path: str, raw_path: bytes) -> bool:
    """Whether the decoded ``path`` (as the ASGI server gives it) and the ``raw_path`` it came
    from are both unambiguous."""
    if not path.startswith("/") or _BAD_ESCAPE.search(raw_path) or b"\\" in raw_path:
        return False
    if _BAD_CHARS.search(path) or unicodedata.normalize("NFKC", path) != path:
        return False
    segments = path[1:].split("/")
    inner = segments[:-1] if len(segments) > 1 else segments  # "/a/" ends in one empty segment
    if any(segment == "" for segment in inner) and path != "/":
        return False
    return not any(segment in _DOT_SEGMENTS for segment in segments)
