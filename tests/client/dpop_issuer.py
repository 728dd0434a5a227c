"""A small DPoP-speaking token endpoint and a guard-protected API, for the client kit's own DPoP
tests (the real server's DPoP is tested end to end in test_dpop_end_to_end.py).

The issuer checks each proof with the shared primitive (``jose/dpop.py: verify_proof``), binds
the tokens it issues to the proof's key (``cnf.jkt``, ``token_type: DPoP``), binds refresh
tokens the same way and refuses a refresh proved by another key, and can ask for nonces: once
(``nonce="once"``), or forever with a new one each time (``nonce="always"``)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from tests.guard.forge import AUDIENCE, ISSUER, claims, new_key, sign
from tests.guard.servers import asgi_server
from tests.support import listening_socket
from tokensmith.guard import DpopNonces, DpopPolicy, Guard, JwtValidator, StaticKeys, pin
from tokensmith.guard.asgi import GuardMiddleware, principal_of
from tokensmith.jose.dpop import DpopError, verify_proof
from tokensmith.jose.keys import SigningKey, verification_key_from_jwk

__all__ = ["DpopIssuer", "dpop_issuer", "protected_api"]


@dataclass
class DpopIssuer:
    base_url: str
    key: SigningKey
    nonce: str | None = None  # None, "once" or "always"
    proofs: list[dict[str, Any]] = field(default_factory=list)  # each token request's proof
    refresh_jkt: dict[str, str] = field(default_factory=dict)
    current_nonce: str | None = None

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.base_url,
            "token_endpoint": self.base_url + "/token",
            "dpop_signing_alg_values_supported": ["ES256", "EdDSA"],
        }

    def token(self, form: dict[str, str], proof: str | None) -> tuple[int, dict[str, str], Any]:
        if proof is None:
            bearer = sign(self.key, claims())
            return 200, {}, {"access_token": bearer, "token_type": "Bearer", "expires_in": 300}
        try:
            checked = verify_proof(
                proof, method="POST", url=self.base_url + "/token", now=int(time.time()),
                max_age=60,
            )  # fmt: skip
        except DpopError as error:
            return 400, {}, {"error": "invalid_dpop_proof", "error_description": str(error)}
        self.proofs.append({"jkt": checked.jkt, "nonce": checked.nonce})
        wanted = self.nonce == "always" or (self.nonce == "once" and self.current_nonce is None)
        if wanted or (self.current_nonce is not None and checked.nonce != self.current_nonce):
            if wanted:
                self.current_nonce = secrets.token_urlsafe(8)
            nonce = self.current_nonce or ""
            body = {"error": "use_dpop_nonce", "error_description": "use the nonce"}
            return 400, {"dpop-nonce": nonce}, body
        refreshing = form.get("grant_type") == "refresh_token"
        if refreshing and self.refresh_jkt.get(form.get("refresh_token", "")) != checked.jkt:
            return 400, {}, {"error": "invalid_grant", "error_description": "wrong key"}
        refresh = secrets.token_urlsafe(16)
        self.refresh_jkt[refresh] = checked.jkt
        access = sign(self.key, claims(cnf={"jkt": checked.jkt}, scope="orders:read"))
        body = {"access_token": access, "token_type": "DPoP", "expires_in": 300}
        return 200, {}, {**body, "refresh_token": refresh}

    def bind(self, refresh_token: str, jkt: str) -> None:
        self.refresh_jkt[refresh_token] = jkt


def _app(issuer: DpopIssuer) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        if scope["path"] == "/token":
            status, extra, payload = issuer.token(
                dict(parse_qsl(body.decode())), headers.get("dpop")
            )
        elif scope["path"] == "/.well-known/oauth-authorization-server":
            status, extra, payload = 200, {}, issuer.metadata()
        else:
            status, extra, payload = 404, {}, {"error": "not_found"}
        raw = [(b"content-type", b"application/json")]
        raw += [(k.encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": json.dumps(payload).encode()})

    return app


@contextmanager
def dpop_issuer(nonce: str | None = None) -> Iterator[DpopIssuer]:
    sock = listening_socket()
    issuer = DpopIssuer(f"http://127.0.0.1:{sock.getsockname()[1]}", new_key(), nonce)
    with asgi_server(_app(issuer), sock=sock):
        yield issuer


@contextmanager
def protected_api(issuer: DpopIssuer, *, nonces: bool = False) -> Iterator[str]:
    """The real guard in front of an app that names the caller; proofs name its own URL."""
    sock = listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    validator = JwtValidator(
        StaticKeys([pin(verification_key_from_jwk(issuer.key.public_jwk()))]),
        issuer=ISSUER,
        audiences=[AUDIENCE],
    )
    policy = DpopPolicy(public_url=base, nonces=DpopNonces() if nonces else None)
    guard = Guard(jwt=validator, dpop=policy)

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        principal = principal_of(scope)
        body = json.dumps({"sub": principal.subject, "jkt": principal.dpop_jkt}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    with asgi_server(GuardMiddleware(inner, guard, scopes=["orders:read"]), sock=sock):
        yield base
