"""Opaque access tokens, checked by RFC 7662 introspection at the issuer.

The resource server authenticates as a confidential client (HTTP Basic, RFC 7662 §2.1). An
answer is reused for at most ``cache_seconds`` (default 1 s, the bound on how long a revoked
token keeps working here) and never past the token's ``exp``. The issuer unreachable, or any
answer but 200 with a JSON object, is 503: never a pass (SECURITY.md case 52).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from tokensmith.guard.audience import audience_of, describe_refusal
from tokensmith.guard.errors import InvalidToken
from tokensmith.guard.principal import Principal
from tokensmith.guard.remote import RemoteCheck, Verdict

__all__ = ["Introspector"]


class Introspector(RemoteCheck):
    what = "access token"

    def __init__(
        self,
        endpoint: str,
        *,
        client_id: str,
        client_secret: str,
        audiences: Iterable[str] = (),
        issuer: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.endpoint = endpoint
        self.audiences = frozenset(audiences)
        self.issuer = issuer
        self._auth = httpx.BasicAuth(client_id, client_secret)

    async def introspect(self, token: str) -> Principal:
        return await self.check_async(token)

    def introspect_sync(self, token: str) -> Principal:
        return self.check_sync(token)

    def build(self, credential: str, context: str | None) -> httpx.Request:
        request = httpx.Request(
            "POST",
            self.endpoint,
            data={"token": credential, "token_type_hint": "access_token"},
            headers={"accept": "application/json"},
        )
        return next(self._auth.auth_flow(request))

    def judge(self, response: httpx.Response) -> Verdict:
        if response.status_code != 200:
            raise ValueError(f"introspection answered {response.status_code}")
        body = response.json()
        if not isinstance(body, dict) or not isinstance(body.get("active"), bool):
            raise ValueError("introspection answered something that is not RFC 7662 JSON")
        if body["active"] is not True:
            return Verdict(None, InvalidToken, "the access token is not active")
        return self._judge_active(body)

    def _judge_active(self, body: dict[str, Any]) -> Verdict:
        token_type = body.get("token_type")
        if token_type not in (None, "Bearer", "access_token", "DPoP"):
            return Verdict(None, InvalidToken, "the token is not an access token")
        if token_type == "DPoP" and not isinstance(body.get("cnf"), dict):
            return Verdict(None, InvalidToken, "the DPoP token has no key binding")
        if self.issuer is not None and body.get("iss") != self.issuer:
            return Verdict(None, InvalidToken, "the access token is from another issuer")
        audience = audience_of(body.get("aud"))  # a list with a non-string names no audience
        if self.audiences and self.audiences.isdisjoint(audience):
            return Verdict(None, InvalidToken, describe_refusal(audience, self.audiences))
        subject, scope, exp = body.get("sub"), body.get("scope", ""), body.get("exp")
        if not isinstance(subject, str) or not isinstance(scope, str):
            return Verdict(None, InvalidToken, "the access token is malformed")
        if exp is not None and (isinstance(exp, bool) or not isinstance(exp, int)):
            return Verdict(None, InvalidToken, "the access token is malformed")
        client_id, jti = body.get("client_id"), body.get("jti")
        return Verdict(
            Principal(
                subject=subject,
                client_id=client_id if isinstance(client_id, str) else None,
                scopes=frozenset(scope.split()),
                audience=audience,
                issuer=body.get("iss") if isinstance(body.get("iss"), str) else None,
                expires_at=exp,
                token_id=jti if isinstance(jti, str) else None,
                kind="opaque",
                claims=body,
            )
        )
