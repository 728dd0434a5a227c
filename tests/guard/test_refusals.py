"""What ``render`` sends for each refusal, byte for byte, and where the refusals sit in the one
error hierarchy (``tokensmith.errors``)."""

from __future__ import annotations

import json

import pytest

from tokensmith import errors
from tokensmith.guard import (
    ForbiddenSource,
    GuardError,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    MissingCredential,
    RateLimited,
    ServiceUnavailable,
    TokenExpired,
    UnknownKeyId,
    render,
)

_BASE = [("content-type", "application/json"), ("cache-control", "no-store")]

CASES: list[tuple[GuardError, int, list[tuple[str, str]], dict[str, str]]] = [
    (
        MissingCredential("send a credential"),
        401,
        [("www-authenticate", 'Bearer realm="api"')],
        {"error_description": "send a credential"},
    ),
    (
        InvalidToken('the token has "expired" \\ now'),
        401,
        [
            (
                "www-authenticate",
                'Bearer realm="api", error="invalid_token", '
                "error_description=\"the token has 'expired'  now\"",
            )
        ],
        {"error": "invalid_token", "error_description": 'the token has "expired" \\ now'},
    ),
    (
        TokenExpired("the token has expired"),
        401,
        [
            (
                "www-authenticate",
                'Bearer realm="api", error="invalid_token", '
                'error_description="the token has expired"',
            )
        ],
        {"error": "invalid_token", "error_description": "the token has expired"},
    ),
    (
        InsufficientScope(("b", "a")),
        403,
        [
            (
                "www-authenticate",
                'Bearer realm="api", error="insufficient_scope", '
                'error_description="this request needs the scope: a b", scope="a b"',
            )
        ],
        {
            "error": "insufficient_scope",
            "error_description": "this request needs the scope: a b",
            "scope": "a b",
        },
    ),
    (
        InvalidRequest("send one credential, not two"),
        400,
        [
            (
                "www-authenticate",
                'Bearer realm="api", error="invalid_request", '
                'error_description="send one credential, not two"',
            )
        ],
        {"error": "invalid_request", "error_description": "send one credential, not two"},
    ),
    (
        ForbiddenSource("not from here"),
        403,
        [],
        {"error": "forbidden_source", "error_description": "not from here"},
    ),
    (
        RateLimited("slow down", retry_after=3),
        429,
        [("retry-after", "3")],
        {"error": "rate_limited", "error_description": "slow down"},
    ),
    (
        ServiceUnavailable("cannot check"),
        503,
        [("retry-after", "1")],
        {"error": "temporarily_unavailable", "error_description": "cannot check"},
    ),
]


@pytest.mark.parametrize(("error", "status", "extra", "body"), CASES)
def test_render_sends_what_it_always_sent(
    error: GuardError, status: int, extra: list[tuple[str, str]], body: dict[str, str]
) -> None:
    sent_status, headers, sent_body = render(error, "api")
    assert sent_status == status
    assert headers == _BASE + extra
    assert json.loads(sent_body) == body


def test_refusals_are_protocol_errors_of_the_one_hierarchy() -> None:
    for kind in (GuardError, InvalidToken, TokenExpired, UnknownKeyId, InsufficientScope):
        assert issubclass(kind, errors.OAuthError) and issubclass(kind, errors.TokensmithError)
    assert issubclass(RateLimited, errors.OAuthError)
    for refusal in (InsufficientScope(("orders:read",)), RateLimited("slow", retry_after=1)):
        row = errors.ERROR_CODES[refusal.code]
        assert (refusal.status, refusal.error) == (row.status, row.sent_as or refusal.code)


def test_a_realm_cannot_break_the_header() -> None:
    _, headers, _ = render(InvalidToken("bad"), 'evil", error="none\r\nx-injected: 1')
    challenge = dict(headers)["www-authenticate"]
    assert "\r" not in challenge and "\n" not in challenge
    assert challenge.startswith('Bearer realm="evil\\", error=\\"none')
