"""What both servers are given: the same clients, a user, and pools of single-use credentials.

Codes and refresh tokens are used once each, so every round gets its own file of values; both
servers receive the same values (each keeps its own copy: Tokensmith as keyed hashes in its
database, the peer in memory).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from tokensmith.oauth.clients import generate_client_id, generate_client_secret

__all__ = ["Client", "Fixtures", "make_fixtures"]

RESOURCE = "https://api.bench.example"
REDIRECT_URI = "https://app.bench.example/callback"


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    secret: str
    grant_types: tuple[str, ...]
    scope: str
    format: str  # "jwt" or "opaque" access tokens

    @property
    def basic(self) -> str:
        # RFC 6749 §2.3.1; our ids and secrets are base64url, so form-encoding changes nothing.
        raw = f"{self.client_id}:{self.secret}".encode()
        return "Basic " + base64.b64encode(raw).decode()


@dataclass(frozen=True, slots=True)
class Fixtures:
    jwt_client: Client
    opaque_client: Client
    web_client: Client
    code_verifier: str
    code_challenge: str
    codes: tuple[Path, ...]  # one file per round; round 0 is the warm-up
    refresh: tuple[Path, ...]

    @property
    def clients(self) -> tuple[Client, ...]:
        return (self.jwt_client, self.opaque_client, self.web_client)


def make_fixtures(directory: Path, *, rounds: int, per_round: int) -> Fixtures:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    cc = ("client_credentials",)
    return Fixtures(
        jwt_client=Client(generate_client_id(), generate_client_secret(), cc, "api:read", "jwt"),
        opaque_client=Client(
            generate_client_id(), generate_client_secret(), cc, "api:read", "opaque"
        ),
        web_client=Client(
            generate_client_id(),
            generate_client_secret(),
            ("authorization_code", "refresh_token"),
            "openid offline_access api:read",
            "jwt",
        ),
        code_verifier=verifier,
        code_challenge=challenge.rstrip(b"=").decode(),
        codes=_pools(directory, "codes", "tsac_", rounds, per_round),
        refresh=_pools(directory, "refresh", "tsrt_", rounds, per_round),
    )


def _pools(directory: Path, name: str, prefix: str, rounds: int, size: int) -> tuple[Path, ...]:
    paths = []
    for index in range(rounds + 1):
        path = directory / f"{name}-{index}.txt"
        values = (prefix + secrets.token_urlsafe(32) for _ in range(size))
        path.write_text("\n".join(values) + "\n")
        paths.append(path)
    return tuple(paths)
