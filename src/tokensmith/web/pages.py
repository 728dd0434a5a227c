"""Server-rendered pages (Jinja2, autoescaped) under a strict Content-Security-Policy.

No page carries script. ``form-action`` names our own origin and, on pages whose form ends in a
redirect to the client, that client's registered origin only (browsers apply form-action to the
redirect that follows a form submission).
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

from tokensmith.core.redirect_uris import parse_redirect_uri

__all__ = ["form_action_for", "page"]

_env = Environment(
    loader=PackageLoader("tokensmith.web", "templates"),
    autoescape=select_autoescape(["html"], default=True),
)


def page(
    template: str, status: int = 200, form_action: str = "'self'", **context: Any
) -> HTMLResponse:
    html = _env.get_template(template).render(**context)
    csp = (
        "default-src 'none'; style-src 'self'; img-src 'self'; "
        f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
    return HTMLResponse(html, status, headers={"content-security-policy": csp})


def form_action_for(redirect_uri: str) -> str:
    """'self' plus the source expression of the one origin the form may end up at."""
    try:
        parsed = parse_redirect_uri(redirect_uri)
    except ValueError:
        return "'self'"  # never matched a registration, so no form leads anywhere else
    if parsed.host is None:
        return f"'self' {parsed.scheme}:"
    # Only a loopback IP redirect may use any port (RFC 8252 §7.3); others keep their own.
    port = ":*" if parsed.is_loopback_ip else parsed.port_part
    return f"'self' {parsed.scheme}://{parsed.host}{port}"
