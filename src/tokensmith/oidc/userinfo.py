"""The UserInfo response (OIDC Core §5.3): the subject, and standard claims by granted scope.

A client that registered userinfo encryption gets the claims as a JWT (§5.3.2): signed with our
key, with ``iss`` and ``aud``, then encrypted to the client's key (``oidc/encryption.py``).
"""

from __future__ import annotations

from typing import Any

from tokensmith.accounts.users import User
from tokensmith.jose.jws import sign_jwt
from tokensmith.jose.keys import SigningKey
from tokensmith.oidc.encryption import Recipient

__all__ = ["USERINFO_JWT_TYPE", "userinfo_claims", "userinfo_jwt"]

USERINFO_JWT_TYPE = "application/jwt"  # OIDC Core §5.3.2


def userinfo_claims(user: User, scopes: frozenset[str]) -> dict[str, Any]:
    claims: dict[str, Any] = {"sub": user.user_id}
    if "profile" in scopes:
        claims["preferred_username"] = user.username
    if "email" in scopes and user.email:
        claims["email"] = user.email
    return claims


def userinfo_jwt(
    claims: dict[str, Any], *, issuer: str, client_id: str, key: SigningKey, recipient: Recipient
) -> str:
    """The claims signed by us for the client (``iss``, ``aud``), then encrypted to it."""
    signed = sign_jwt(key, {**claims, "iss": issuer, "aud": client_id}, typ="JWT")
    return recipient.seal(signed)
