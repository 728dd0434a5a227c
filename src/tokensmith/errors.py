"""One error hierarchy for everything a client or an operator can cause.

Each protocol error carries the error code it renders as, a public description that is safe to
send, and a private ``detail`` that only ever reaches the log. The code names one row of
``ERROR_CODES``, which alone decides the HTTP status and the ``error`` value sent: a class says
``code = "invalid_grant"`` and never sets its own ``status``.

    TokensmithError
    ├── StartupError ── ConfigError          refuse to start; one line for a person
    ├── RedirectError                        an OAuthError sent back to a verified redirect URI
    └── OAuthError                           an ``error`` code, rendered in the protocol's format
        ├── InvalidRequest, InvalidClient, … one class per code of the table
        ├── PageError                        shown on our own page: the redirect is not trusted
        └── (elsewhere) GuardError, BearerRefused, ApiKeyRefused, the gateway's Refusal

Other packages root their own errors here too (``jose``'s ``KeyRingError``, the CLI's
``CommandError``); ``core`` cannot (it sits beside this module, not above it).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple

__all__ = [
    "ERROR_CODES",
    "AccessDenied",
    "AuthorizationPending",
    "ConfigError",
    "ConsentRequired",
    "ErrorCode",
    "ExpiredToken",
    "HeadersTooLarge",
    "InsufficientScope",
    "InteractionRequired",
    "InvalidClient",
    "InvalidClientMetadata",
    "InvalidDpopProof",
    "InvalidGrant",
    "InvalidRedirectUri",
    "InvalidRequest",
    "InvalidRequestObject",
    "InvalidRequestUri",
    "InvalidScope",
    "InvalidSoftwareStatement",
    "InvalidTarget",
    "InvalidToken",
    "LoginRequired",
    "MethodNotAllowed",
    "NotFound",
    "OAuthError",
    "PageError",
    "PayloadTooLarge",
    "RedirectError",
    "RequestNotSupported",
    "RequestUriNotSupported",
    "ServerError",
    "SlowDown",
    "StartupError",
    "TemporarilyUnavailable",
    "TokensmithError",
    "TooManyRequests",
    "UnapprovedSoftwareStatement",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "UnsupportedResponseType",
    "UseDpopNonce",
]


class ErrorCode(NamedTuple):
    """One row of the table: the HTTP status, where the code is defined, and what is sent as
    ``error`` when that is not the code itself (a 413 is sent as ``invalid_request``)."""

    status: int
    spec: str
    sent_as: str | None = None


# Every code Tokensmith sends or will send. A JSON answer uses the status; an error that goes
# back by redirect (RFC 6749 §4.1.2.1) sends only the code, so its status is that of the same
# code at the token endpoint (400 unless a spec says otherwise).
ERROR_CODES: Mapping[str, ErrorCode] = MappingProxyType(
    {
        # RFC 6749 §5.2: the token endpoint, and every endpoint that authenticates a client.
        "invalid_request": ErrorCode(400, "RFC 6749 §5.2"),
        "invalid_client": ErrorCode(401, "RFC 6749 §5.2"),
        "invalid_grant": ErrorCode(400, "RFC 6749 §5.2"),
        "unauthorized_client": ErrorCode(400, "RFC 6749 §5.2"),
        "unsupported_grant_type": ErrorCode(400, "RFC 6749 §5.2"),
        "invalid_scope": ErrorCode(400, "RFC 6749 §5.2"),
        # RFC 6749 §4.1.2.1: the authorization endpoint's errors (sent by redirect).
        "access_denied": ErrorCode(400, "RFC 6749 §4.1.2.1, RFC 8628 §3.5"),
        "unsupported_response_type": ErrorCode(400, "RFC 6749 §4.1.2.1"),
        "server_error": ErrorCode(500, "RFC 6749 §4.1.2.1"),
        "temporarily_unavailable": ErrorCode(503, "RFC 6749 §4.1.2.1"),
        # RFC 6750 §3.1: a protected resource (userinfo, the admin API, the guard).
        "invalid_token": ErrorCode(401, "RFC 6750 §3.1"),
        "insufficient_scope": ErrorCode(403, "RFC 6750 §3.1"),
        # RFC 6750 §3.1: a request with no credential at all; its challenge names no code.
        "missing_credential": ErrorCode(401, "RFC 6750 §3.1", "invalid_request"),
        # RFC 7591 §3.2.2: dynamic client registration.
        "invalid_redirect_uri": ErrorCode(400, "RFC 7591 §3.2.2"),
        "invalid_client_metadata": ErrorCode(400, "RFC 7591 §3.2.2"),
        "invalid_software_statement": ErrorCode(400, "RFC 7591 §3.2.2"),
        "unapproved_software_statement": ErrorCode(400, "RFC 7591 §3.2.2"),
        # RFC 8628 §3.5: the device authorization grant, polling the token endpoint.
        "authorization_pending": ErrorCode(400, "RFC 8628 §3.5"),
        "slow_down": ErrorCode(400, "RFC 8628 §3.5"),
        "expired_token": ErrorCode(400, "RFC 8628 §3.5"),
        # RFC 9101 §7 (JAR; also OIDC Core §3.1.2.6), used by PAR (RFC 9126 §2.3).
        "invalid_request_uri": ErrorCode(400, "RFC 9101 §7"),
        "invalid_request_object": ErrorCode(400, "RFC 9101 §7"),
        "request_not_supported": ErrorCode(400, "RFC 9101 §7"),
        "request_uri_not_supported": ErrorCode(400, "RFC 9101 §7"),
        # RFC 9449 (DPoP): at the token endpoint; a resource server answers these with 401.
        "invalid_dpop_proof": ErrorCode(400, "RFC 9449 §5, §7.1"),
        "use_dpop_nonce": ErrorCode(400, "RFC 9449 §8, §9"),
        # RFC 9449 §7.1, §9: the same two codes from a protected resource (the guard), with 401.
        "resource_invalid_dpop_proof": ErrorCode(401, "RFC 9449 §7.1", "invalid_dpop_proof"),
        "resource_use_dpop_nonce": ErrorCode(401, "RFC 9449 §9", "use_dpop_nonce"),
        # OIDC Core §3.1.2.6: prompt=none could not be honoured.
        "login_required": ErrorCode(400, "OIDC Core §3.1.2.6"),
        "consent_required": ErrorCode(400, "OIDC Core §3.1.2.6"),
        "interaction_required": ErrorCode(400, "OIDC Core §3.1.2.6"),
        # RFC 8707 §2: resource indicators.
        "invalid_target": ErrorCode(400, "RFC 8707 §2"),
        # Tokensmith's own: HTTP-level refusals (their status from RFC 9110, RFC 6585 and the
        # PAR endpoint's list in RFC 9126 §2.3), sent as invalid_request unless named here.
        "not_found": ErrorCode(404, "Tokensmith; RFC 9110 §15.5.5"),
        "method_not_allowed": ErrorCode(405, "RFC 9126 §2.3; RFC 9110 §15.5.6", "invalid_request"),
        "request_timeout": ErrorCode(408, "Tokensmith; RFC 9110 §15.5.9", "invalid_request"),
        "payload_too_large": ErrorCode(413, "RFC 9126 §2.3; RFC 9110 §15.5.14", "invalid_request"),
        "headers_too_large": ErrorCode(431, "Tokensmith; RFC 6585 §5", "invalid_request"),
        "rate_limited": ErrorCode(429, "Tokensmith; RFC 9126 §2.3, RFC 6585 §4"),
        # Tokensmith's own: API keys (the ApiKey challenge at /api-keys/verify, the guard).
        "invalid_key": ErrorCode(401, "Tokensmith (docs/api-keys.md)"),
        "forbidden_source": ErrorCode(403, "Tokensmith (docs/api-keys.md)"),
        # An authenticated client that lacks a permission (client_ip at /api-keys/verify).
        "client_forbidden": ErrorCode(403, "Tokensmith; RFC 6749 §5.2", "unauthorized_client"),
        # Tokensmith's own: the gateway, when the upstream fails.
        "bad_gateway": ErrorCode(502, "Tokensmith (docs/gateway.md); RFC 9110 §15.6.3"),
        "gateway_timeout": ErrorCode(504, "Tokensmith (docs/gateway.md); RFC 9110 §15.6.5"),
        # Tokensmith's own: the BFF, to the browser app in front of it.
        "forbidden": ErrorCode(403, "Tokensmith (docs/bff.md: CSRF); RFC 9110 §15.5.4"),
        "session_required": ErrorCode(401, "Tokensmith (docs/bff.md)", "login_required"),
    }
)


class TokensmithError(Exception):
    """Base of every error Tokensmith raises on purpose."""


class StartupError(TokensmithError):
    """The server or a command cannot start safely; the message is one line for a person."""


class ConfigError(StartupError):
    """A setting is missing, malformed or unsafe; the message names the setting."""


class OAuthError(TokensmithError):
    """An error with a code of ``ERROR_CODES``, rendered by the web layer in the protocol's format.

    A subclass names its ``code``; ``error`` and ``status`` follow from the table. A wrapper that
    picks the code at run time (a bearer refusal, a gateway refusal) passes ``code=`` instead.
    """

    code: str = "invalid_request"
    error: str = "invalid_request"
    status: int = 400
    # False for a refusal that is the protocol's routine, not an event: a device's
    # authorization_pending poll, every few seconds (counted by a metric, not an audit row).
    audited: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "status" in cls.__dict__ or "error" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: set code (a row of ERROR_CODES), not status or error")
        if "code" in cls.__dict__:
            cls.error, cls.status = _sent(cls.code)

    def __init__(self, description: str = "", *, detail: str = "", code: str | None = None) -> None:
        if code is not None:
            self.code = code
            self.error, self.status = _sent(code)
        super().__init__(description or self.error)
        self.description = description
        # Never sent to a client: what an operator needs to know, for the log.
        self.detail = detail


def _sent(code: str) -> tuple[str, int]:
    """What ``code`` is sent as, and with which status; an unknown code is a programming error."""
    try:
        entry = ERROR_CODES[code]
    except KeyError:
        raise ValueError(f"{code!r} is not in tokensmith.errors.ERROR_CODES") from None
    return entry.sent_as or code, entry.status


# -- RFC 6749 §5.2 ---------------------------------------------------------------------------


class InvalidRequest(OAuthError):
    code = "invalid_request"


class InvalidClient(OAuthError):
    """RFC 6749 §5.2: client authentication failed. Unknown client and wrong secret look alike."""

    code = "invalid_client"


class InvalidGrant(OAuthError):
    code = "invalid_grant"


class UnauthorizedClient(OAuthError):
    code = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    code = "unsupported_grant_type"


class InvalidScope(OAuthError):
    code = "invalid_scope"


# -- RFC 6749 §4.1.2.1 -----------------------------------------------------------------------


class AccessDenied(OAuthError):
    code = "access_denied"


class UnsupportedResponseType(OAuthError):
    code = "unsupported_response_type"


class ServerError(OAuthError):
    code = "server_error"


class TemporarilyUnavailable(OAuthError):
    code = "temporarily_unavailable"


# -- RFC 6750 §3.1 ---------------------------------------------------------------------------


class InvalidToken(OAuthError):
    code = "invalid_token"


class InsufficientScope(OAuthError):
    code = "insufficient_scope"


# -- RFC 7591 §3.2.2 -------------------------------------------------------------------------


class InvalidRedirectUri(OAuthError):
    code = "invalid_redirect_uri"


class InvalidClientMetadata(OAuthError):
    code = "invalid_client_metadata"


class InvalidSoftwareStatement(OAuthError):
    code = "invalid_software_statement"


class UnapprovedSoftwareStatement(OAuthError):
    code = "unapproved_software_statement"


# -- RFC 8628 §3.5 ---------------------------------------------------------------------------


class AuthorizationPending(OAuthError):
    code = "authorization_pending"
    audited = False


class SlowDown(OAuthError):
    code = "slow_down"


class ExpiredToken(OAuthError):
    code = "expired_token"


# -- RFC 9101 §7 -----------------------------------------------------------------------------


class InvalidRequestUri(OAuthError):
    code = "invalid_request_uri"


class InvalidRequestObject(OAuthError):
    code = "invalid_request_object"


class RequestNotSupported(OAuthError):
    code = "request_not_supported"


class RequestUriNotSupported(OAuthError):
    code = "request_uri_not_supported"


# -- RFC 9449 --------------------------------------------------------------------------------


class InvalidDpopProof(OAuthError):
    code = "invalid_dpop_proof"


class UseDpopNonce(OAuthError):
    """Carries the nonce the client must put in its next proof (sent as ``DPoP-Nonce``)."""

    code = "use_dpop_nonce"
    audited = False  # the protocol's routine: a client's first proof has no nonce yet

    def __init__(
        self, description: str = "", *, nonce: str | None = None, detail: str = ""
    ) -> None:
        super().__init__(description, detail=detail)
        self.nonce = nonce


# -- OIDC Core §3.1.2.6 ----------------------------------------------------------------------


class LoginRequired(OAuthError):
    code = "login_required"


class ConsentRequired(OAuthError):
    code = "consent_required"


class InteractionRequired(OAuthError):
    code = "interaction_required"


# -- RFC 8707 §2 -----------------------------------------------------------------------------


class InvalidTarget(OAuthError):
    """RFC 8707 §2: the requested resource is invalid, unknown or not allowed."""

    code = "invalid_target"


# -- Tokensmith's own ------------------------------------------------------------------------


class NotFound(OAuthError):
    code = "not_found"


class MethodNotAllowed(OAuthError):
    code = "method_not_allowed"


class PayloadTooLarge(OAuthError):
    code = "payload_too_large"


class HeadersTooLarge(OAuthError):
    code = "headers_too_large"


class TooManyRequests(OAuthError):
    """Repeated failures locked the caller out for a while, or it is over its rate."""

    code = "rate_limited"

    def __init__(self, retry_after: int, description: str = "") -> None:
        super().__init__(description or f"too many attempts; retry after {retry_after} seconds")
        self.retry_after = retry_after


# -- the authorization endpoint: on our page, or back to the client --------------------------


class PageError(InvalidRequest):
    """Shown to the person on our own error page: the redirect target cannot be trusted
    (RFC 9700 §4.1.1: never redirect to an unverified URI). ``message`` is the description."""

    def __init__(self, title: str, message: str) -> None:
        super().__init__(message)
        self.title = title
        self.message = message


class RedirectError(TokensmithError):
    """An OAuthError that goes back to the client's verified redirect URI (RFC 6749 §4.1.2.1),
    with the ``state`` the request carried."""

    def __init__(self, error: OAuthError, redirect_uri: str, state: str | None) -> None:
        super().__init__(error.description)
        self.error = error
        self.redirect_uri = redirect_uri
        self.state = state
