"""Where a login may send the browser back to: a path of this origin, never anywhere else.

``return_to`` comes from the address bar, so it is an open-redirect vector (RFC 9700 §4.11):
only a path that starts with one ``/`` is accepted. Refused: ``//host`` and ``/\\host`` (browsers
read both as another host), any scheme, backslashes, control characters and whitespace, and
anything too long. A refused value falls back to ``/``.
"""

from __future__ import annotations

import re

__all__ = ["safe_return_to"]

_ALLOWED = re.compile(r"^/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@/?%#]*$")
_MAX = 2048


def safe_return_to(value: str | None) -> str | None:
    """``value`` if it is a same-origin relative path, else None."""
    if value is None or len(value) > _MAX or not _ALLOWED.match(value):
        return None
    lowered = value.lower()
    # An encoded slash or backslash right after the first / could be decoded into //host.
    if lowered.startswith(("/%2f", "/%5c")):
        return None
    return value
