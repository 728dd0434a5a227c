"""One error hierarchy for everything a client or an operator can cause.

Each protocol error carries the RFC 6749 §5.2 / RFC 6750 §3.1 code it renders as, a public
description that is safe to send, and a private ``detail`` that only ever reaches the log.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "HeadersTooLarge",
    "InvalidClient",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "InvalidTarget",
    "MethodNotAllowed",
    "NotFound",
    "OAuthError",
    "PayloadTooLarge",
    "ServerError",
    "StartupError",
    "TemporarilyUnavailable",
    "TokensmithError",
    "UnauthorizedClient",
    "UnsupportedGrantType",
]


class TokensmithError(Exception):
    """Base of every error Tokensmith raises on purpose."""


class StartupError(TokensmithError):
    """The server or a command cannot start safely; the message is one line for a person."""


class ConfigError(StartupError):
    """A setting is missing, malformed or unsafe; the message names the setting."""


class OAuthError(TokensmithError):
    """An error with an RFC 6749 error code, rendered by the web layer in the protocol's format."""

    error: str = "invalid_request"
    status: int = 400

    def __init__(self, description: str = "", *, detail: str = "") -> None:
        super().__init__(description or self.error)
        self.description = description
        # Never sent to a client: what an operator needs to know, for the log.
        self.detail = detail


class InvalidRequest(OAuthError):
    error = "invalid_request"
    status = 400


class InvalidClient(OAuthError):
    """RFC 6749 §5.2: client authentication failed. Unknown client and wrong secret look alike."""

    error = "invalid_client"
    status = 401


class InvalidGrant(OAuthError):
    error = "invalid_grant"
    status = 400


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"
    status = 400


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"
    status = 400


class InvalidScope(OAuthError):
    error = "invalid_scope"
    status = 400


class InvalidTarget(OAuthError):
    """RFC 8707 §2: the requested resource is invalid, unknown or not allowed."""

    error = "invalid_target"
    status = 400


class PayloadTooLarge(OAuthError):
    error = "invalid_request"
    status = 413


class HeadersTooLarge(OAuthError):
    error = "invalid_request"
    status = 431


class TooManyRequests(OAuthError):
    """Repeated failures locked the caller out for a while, or it is over its rate."""

    error = "rate_limited"
    status = 429

    def __init__(self, retry_after: int, description: str = "") -> None:
        super().__init__(description or f"too many attempts; retry after {retry_after} seconds")
        self.retry_after = retry_after


class MethodNotAllowed(OAuthError):
    error = "invalid_request"
    status = 405


class NotFound(OAuthError):
    error = "not_found"
    status = 404


class ServerError(OAuthError):
    error = "server_error"
    status = 500


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status = 503
