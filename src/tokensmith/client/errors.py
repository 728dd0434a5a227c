"""The client kit's errors: one hierarchy, a short message for a person, the OAuth ``error`` code
when the server sent one (RFC 6749 §5.2). No message ever carries a token or a secret."""

from __future__ import annotations

from tokensmith.errors import TokensmithError

__all__ = [
    "ClientError",
    "DiscoveryError",
    "DiscoveryUnavailable",
    "IdTokenError",
    "LoginError",
    "NotSignedIn",
    "ServerRefused",
    "SessionExpired",
    "StorageError",
    "TokenEndpointUnavailable",
]


class ClientError(TokensmithError):
    """Base of every error of ``tokensmith.client``; ``error`` is the OAuth code, if any."""

    def __init__(self, message: str, *, error: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error = error


class DiscoveryError(ClientError):
    """The issuer's metadata cannot be read or is not to be trusted (RFC 8414 §3.3)."""


class DiscoveryUnavailable(DiscoveryError):
    """The issuer could not be reached for its metadata, or answered 5xx: try again later."""


class TokenEndpointUnavailable(ClientError):
    """The server could not be reached (or answered 5xx) and no valid token is at hand."""


class ServerRefused(ClientError):
    """The server answered a token, device or revocation request with an OAuth error."""


class SessionExpired(ServerRefused):
    """The stored refresh token is no longer accepted (``invalid_grant``): sign in again."""


class NotSignedIn(ClientError):
    """No stored session for this issuer and client."""


class LoginError(ClientError):
    """A sign-in did not complete: a mismatched ``state`` or ``iss``, an error redirect, a
    timeout, a denied device code. Nothing was stored."""


class IdTokenError(LoginError):
    """The ID token failed validation (OpenID Connect Core §3.1.3.7)."""


class StorageError(ClientError):
    """The session store cannot be read or written."""
