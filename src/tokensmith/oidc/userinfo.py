"""The UserInfo response (OIDC Core §5.3): the subject, and standard claims by granted scope."""

from __future__ import annotations

from typing import Any

from tokensmith.accounts.users import User

__all__ = ["userinfo_claims"]


def userinfo_claims(user: User, scopes: frozenset[str]) -> dict[str, Any]:
    claims: dict[str, Any] = {"sub": user.user_id}
    if "profile" in scopes:
        claims["preferred_username"] = user.username
    if "email" in scopes and user.email:
        claims["email"] = user.email
    return claims
