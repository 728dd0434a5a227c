"""The Txn-Token names and claim builder that the server, the gateway and the guard share."""

from __future__ import annotations

import pytest

from tokensmith.core.txn_tokens import (
    TXN_TOKEN_JWT_TYP,
    TXN_TOKEN_TYPE_URN,
    subject_identifier,
    txn_claims,
)


def _claims(**changes: object) -> dict[str, object]:
    args: dict[str, object] = {
        "issuer": "https://issuer.example",
        "audience": "https://trust.example",
        "subject_id": "user-1",
        "txn": "t-1",
        "purpose": "orders:read",
        "authorization_details": {"order": "42"},
        "request_context": {"req_ip": "192.0.2.7"},
        "now": 1000,
        "ttl": 60,
        "scope": "orders:read",
    }
    args.update(changes)
    return txn_claims(**args)  # type: ignore[arg-type]


def test_the_names_are_the_drafts() -> None:
    assert TXN_TOKEN_TYPE_URN == "urn:ietf:params:oauth:token-type:txn_token"
    assert TXN_TOKEN_JWT_TYP == "txntoken+jwt"


def test_claims_carry_the_context_and_a_short_life() -> None:
    claims = _claims()
    assert claims == {
        "iss": "https://issuer.example",
        "aud": "https://trust.example",
        "iat": 1000,
        "exp": 1060,
        "txn": "t-1",
        "sub_id": {"format": "opaque", "id": "user-1"},
        "sub": "user-1",
        "azd": {"order": "42"},
        "rctx": {"req_ip": "192.0.2.7"},
        "purp": "orders:read",
        "scope": "orders:read",
    }


def test_empty_context_is_left_out() -> None:
    claims = _claims(authorization_details=None, request_context={}, purpose=None, scope=None)
    assert not {"azd", "rctx", "purp", "scope"} & set(claims)


def test_a_subject_identifier_object_is_kept() -> None:
    assert subject_identifier({"format": "email", "email": "a@example.com"}) == {
        "format": "email",
        "email": "a@example.com",
    }
    with pytest.raises(ValueError):
        subject_identifier({"email": "a@example.com"})


@pytest.mark.parametrize("changes", [{"txn": ""}, {"ttl": 0}])
def test_a_token_without_id_or_life_is_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        _claims(**changes)
