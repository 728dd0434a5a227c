"""Transaction tokens (draft-ietf-oauth-transaction-tokens): the names and the claim set.

A Txn-Token carries one external request's identity and context through the services of a
trust domain. The authorization server issues it by token exchange (RFC 8693, ``oauth/``), the
gateway may mint one under its own key, and the guard checks it; all three share what is here,
which does no I/O and imports nothing of theirs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "TXN_CLAIMS",
    "TXN_ISSUED_TOKEN_TYPE",
    "TXN_TOKEN_JWT_TYP",
    "TXN_TOKEN_TYPE_URN",
    "subject_identifier",
    "txn_claims",
]

# The token type a token exchange asks for and answers with (the draft's IANA registration).
TXN_TOKEN_TYPE_URN = "urn:ietf:params:oauth:token-type:txn_token"
# The JWT header's typ: a Txn-Token is never mistaken for an access or ID token (RFC 8725 §3.11).
TXN_TOKEN_JWT_TYP = "txntoken+jwt"
# A Txn-Token is no OAuth access token: the exchange's token_type says so (RFC 8693 §2.2.1).
TXN_ISSUED_TOKEN_TYPE = "N_A"
# The claims the draft defines beside the registered ones, in the order they are built.
TXN_CLAIMS = ("txn", "sub_id", "azd", "rctx", "purp")


def subject_identifier(subject: str | Mapping[str, Any]) -> dict[str, Any]:
    """``sub_id`` as an RFC 9493 subject identifier: a bare subject is the ``opaque`` format."""
    if isinstance(subject, str):
        return {"format": "opaque", "id": subject}
    if not isinstance(subject.get("format"), str):
        raise ValueError("a subject identifier names its format")
    return dict(subject)


def txn_claims(
    *,
    issuer: str,
    audience: str,
    subject_id: str | Mapping[str, Any],
    txn: str,
    purpose: str | None,
    authorization_details: Mapping[str, Any] | None,
    request_context: Mapping[str, Any] | None,
    now: int,
    ttl: int,
    scope: str | None,
) -> dict[str, Any]:
    """The claim set of one Txn-Token: ``aud`` is the trust domain, ``exp`` ``ttl`` seconds on.

    Empty context members are left out rather than sent empty; the caller signs the result with
    header ``typ`` ``TXN_TOKEN_JWT_TYP``.
    """
    if not txn:
        raise ValueError("a transaction token needs its transaction id")
    if ttl < 1:
        raise ValueError("a transaction token lives at least a second")
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl,
        "txn": txn,
        "sub_id": subject_identifier(subject_id),
    }
    if isinstance(subject_id, str):
        claims["sub"] = subject_id  # the later drafts name the subject by sub as well
    if authorization_details:
        claims["azd"] = dict(authorization_details)
    if request_context:
        claims["rctx"] = dict(request_context)
    if purpose:
        claims["purp"] = purpose
    if scope:
        claims["scope"] = scope
    return claims
