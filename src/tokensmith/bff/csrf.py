"""Which browser requests the BFF serves: a CSRF defence in depth, without tokens in the page.

Every ``/bff/api`` call and every state-changing request (POST, PUT, PATCH, DELETE; logout)
must carry ``X-Tokensmith-CSRF: 1``. A cross-site page cannot send a custom header without a CORS
preflight, and the BFF answers no preflight, so the header proves the request came from our own
script. State-changing requests must also carry an ``Origin`` equal to the configured origin
(browsers send it on every such request). ``Sec-Fetch-Site``, where the browser sends it, must
say ``same-origin``. Anything else is 403 before a session is read or an upstream called.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["CSRF_HEADER", "SAFE_METHODS", "csrf_refusal"]

CSRF_HEADER = "x-tokensmith-csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_refusal(method: str, headers: Mapping[str, str], origin: str) -> str | None:
    """Why this request is refused, or None when it may go on. ``headers``: lower-case names."""
    if headers.get(CSRF_HEADER) != "1":
        return f"the request needs the {CSRF_HEADER} header"
    site = headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return "the request comes from another site"
    if method not in SAFE_METHODS and headers.get("origin") != origin:
        return "the request's Origin is not this application's"
    return None
