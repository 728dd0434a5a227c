"""node-oidc-provider (bench/peers/node-oidc-provider.mjs) with the same clients and pools."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from bench.fixtures import REDIRECT_URI, RESOURCE, Fixtures
from bench.procs import Group, wait_for_http, wait_for_log
from tokensmith.core.secrets import b64url

__all__ = ["PeerServer"]


class PeerServer:
    name = "node-oidc-provider"
    token_path = "/token"
    introspect_path = "/token/introspection"

    def __init__(
        self, home: Path, *, script: Path, workers: int, port: int, fixtures: Fixtures
    ) -> None:
        self.home = home
        self.script = script
        self.workers = workers
        self.port = port
        self.fixtures = fixtures
        self.base_url = f"http://127.0.0.1:{port}"
        self.introspect_token = "bench-" + secrets.token_urlsafe(32)
        self.group: Group | None = None
        home.mkdir(parents=True, exist_ok=True)

    def start(self, *, pools: bool, stored_tokens: int) -> None:
        fx = self.fixtures
        config = {
            "resource": RESOURCE,
            "cookie_key": secrets.token_urlsafe(32),
            "jwk": _es256_private_jwk(),
            "clients": [
                {
                    "client_id": c.client_id,
                    "client_secret": c.secret,
                    "grant_types": list(c.grant_types),
                    "redirect_uris": [REDIRECT_URI]
                    if "authorization_code" in c.grant_types
                    else [],
                    "scope": c.scope,
                    "format": c.format,
                }
                for c in fx.clients
            ],
            "seed": {
                "codes_file": _joined(self.home / "codes.txt", fx.codes) if pools else None,
                "refresh_file": _joined(self.home / "refresh.txt", fx.refresh) if pools else None,
                "code_client": fx.web_client.client_id,
                "subject": "bench-user",
                "redirect_uri": REDIRECT_URI,
                "code_challenge": fx.code_challenge,
                "opaque_client": fx.opaque_client.client_id,
                "introspect_token": self.introspect_token,
                "filler": stored_tokens,
            },
        }
        started = time.monotonic()
        config_path = self.home / "config.json"
        config_path.write_text(json.dumps(config))
        env = dict(os.environ)
        env |= {
            "PORT": str(self.port),
            "WORKERS": str(self.workers),
            "BENCH_CONFIG": str(config_path),
            "NODE_ENV": "production",
        }
        self.group = Group(
            self.name,
            ["node", str(self.script)],
            env=env,
            cwd=self.script.parent,
            log=self.home / "server.log",
        )
        # Seeding happens before a worker listens; the primary prints this once all listen.
        wait_for_log(self.group, f"ready {self.port}", timeout=300)
        wait_for_http(self.base_url + "/jwks", self.group)
        took = time.monotonic() - started
        print(f"  peer: {self.workers} process(es), {stored_tokens:,} stored tokens ({took:.0f} s)")

    def stop(self) -> None:
        if self.group is not None:
            self.group.stop()
            self.group = None


def _es256_private_jwk() -> dict[str, str]:
    """One key for every worker of a cluster (RFC 7518 §6.2 members)."""
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.private_numbers()
    public = numbers.public_numbers
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(public.x.to_bytes(32, "big")),
        "y": b64url(public.y.to_bytes(32, "big")),
        "d": b64url(numbers.private_value.to_bytes(32, "big")),
    }


def _joined(target: Path, parts: tuple[Path, ...]) -> str:
    target.write_text("".join(p.read_text() for p in parts))
    return str(target)
