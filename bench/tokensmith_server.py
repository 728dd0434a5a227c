"""Tokensmith under ``tokensmith serve``, on a fresh SQLite file or PostgreSQL schema.

Set-up is what an operator does (``tokensmith migrate``, then registration through the stores),
plus bulk inserts through SQLAlchemy Core into Tokensmith's own tables for the pools of codes and
refresh tokens and for the stored tokens of the scaling scenarios.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa

from bench.fixtures import REDIRECT_URI, RESOURCE, Client, Fixtures
from bench.procs import Group, wait_for_http
from tokensmith.accounts.users import User, hash_password
from tokensmith.apikeys.lifecycle import NewApiKey
from tokensmith.core.sealing import generate_master_key
from tokensmith.core.secrets import keyed_hash
from tokensmith.oauth.clients import NewClient
from tokensmith.persistence import tables
from tokensmith.runtime.services import Services, open_services
from tokensmith.settings import Settings

__all__ = ["POSTGRES_URL", "TokensmithServer"]

POSTGRES_URL = os.environ.get(
    "TOKENSMITH_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
SUBJECT_NAME = "bench-user"
_BATCH = 20_000


class TokensmithServer:
    name = "tokensmith"
    token_path = "/token"
    introspect_path = "/introspect"

    def __init__(
        self, home: Path, *, backend: str, workers: int, port: int, fixtures: Fixtures
    ) -> None:
        self.home = home
        self.backend = backend
        self.workers = workers
        self.port = port
        self.fixtures = fixtures
        self.base_url = f"http://127.0.0.1:{port}"
        self.schema = f"bench_{secrets.token_hex(4)}" if backend == "postgresql" else None
        self.group: Group | None = None
        self.introspect_token = ""
        self.user_id = ""
        self.stored_tokens = 0
        self.master_key = generate_master_key()  # as production would: no key file to create
        self.extra_env: dict[str, str] = {}  # TOKENSMITH_* settings of one variant
        home.mkdir(parents=True, exist_ok=True)

    # -- environment -----------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENSMITH_")}
        env["TOKENSMITH_VAR_DIR"] = str(self.home / "var")
        env["TOKENSMITH_MASTER_KEY"] = self.master_key
        env["TOKENSMITH_LOG_LEVEL"] = os.environ.get("TOKENSMITH_BENCH_LOG_LEVEL", "INFO")
        if self.backend == "postgresql":
            env["TOKENSMITH_DATABASE_URL"] = POSTGRES_URL
            env["TOKENSMITH_DATABASE_SCHEMA"] = self.schema or ""
        return env | self.extra_env

    def create_api_key(self) -> str:
        """A live API key on this server (its database), for the verification scenario."""

        async def create() -> str:
            services = await open_services(self.settings(), create_keys=False)
            try:
                request = NewApiKey(name="bench", owner="bench", scope="api:read")
                return (await services.key_manager.create(request, "bench")).key
            finally:
                await services.close()

        return asyncio.run(create())

    def settings(self) -> Settings:
        values: dict[str, Any] = {"var_dir": self.home / "var", "master_key": self.master_key}
        if self.backend == "postgresql":
            values |= {"database_url": POSTGRES_URL, "database_schema": self.schema}
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    # -- life cycle ------------------------------------------------------------------------

    def prepare(self, *, pools: bool) -> None:
        """A fresh schema (PostgreSQL), migrated, with the bench's clients, users and pools."""
        if self.schema is not None:
            _postgres(f"CREATE SCHEMA {self.schema}")
        migrate = [_tokensmith(), "migrate"]
        subprocess.run(migrate, env=self.env(), cwd=self.home, check=True, capture_output=True)
        asyncio.run(self._prepare(pools=pools))

    def start(self, *, pools: bool, stored_tokens: int) -> None:
        self.prepare(pools=pools)
        tokensmith = _tokensmith()
        self.add_stored_tokens(stored_tokens)
        argv = [tokensmith, "serve", "--port", str(self.port), "--workers", str(self.workers)]
        self.group = Group(
            self.name, argv, env=self.env(), cwd=self.home, log=self.home / "server.log"
        )
        wait_for_http(self.base_url + "/healthz", self.group)
        self.introspect_token = self._issue_opaque_token()

    def stop(self) -> None:
        if self.group is not None:
            self.group.stop()
            self.group = None
        self.drop()

    def drop(self) -> None:
        """Drop the PostgreSQL schema ``prepare`` made, if any."""
        if self.schema is not None:
            _postgres(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
            self.schema = None

    def add_stored_tokens(self, total: int) -> None:
        """Grow issued_tokens to ``total`` rows of live opaque tokens (the scaling scenarios)."""
        if total > self.stored_tokens:
            started = time.monotonic()
            asyncio.run(self._fill(total - self.stored_tokens))
            took = time.monotonic() - started
            print(f"  {self.backend}: {total:,} stored tokens ({took:.0f} s to insert)", flush=True)
            self.stored_tokens = total

    # -- set-up ----------------------------------------------------------------------------

    async def _prepare(self, *, pools: bool) -> None:
        services = await open_services(self.settings(), create_keys=True)
        try:
            now = services.clock.now()
            for client in self.fixtures.clients:
                await services.clients.add(self._client(services, client, now))
            user = User(
                secrets.token_hex(12),
                SUBJECT_NAME,
                None,
                hash_password(secrets.token_urlsafe(16)),
                now - 60,
                now - 60,
            )
            await services.users.add(user)
            self.user_id = user.user_id
            if pools:
                await self._seed_codes(services, now)
                await self._seed_refresh(services, now)
        finally:
            await services.close()

    def _client(self, services: Services, client: Client, now: int) -> Any:
        request = NewClient(
            client.client_id,
            grant_types=client.grant_types,
            redirect_uris=(REDIRECT_URI,) if "authorization_code" in client.grant_types else (),
            scope=client.scope,
            access_token_format=client.format,  # type: ignore[arg-type]
        )
        digest = keyed_hash(services.master.pepper, client.secret)
        return request.validated(client.client_id, digest, now, offered=services.protocol.grants)

    async def _seed_codes(self, services: Services, now: int) -> None:
        pepper, fx = services.master.pepper, self.fixtures
        rows = (
            {
                "code_hash": keyed_hash(pepper, value),
                "client_id": fx.web_client.client_id,
                "user_id": self.user_id,
                "redirect_uri": REDIRECT_URI,
                "scope": "openid api:read",
                "code_challenge": fx.code_challenge,
                "nonce": None,
                "auth_time": now,
                "session_id": None,
                "resource": None,
                "created_at": now,
                "expires_at": now + 3600,  # longer than a real code lives: the pool must last
                "consumed_at": None,
                "replayed_at": None,
            }
            for value in _values(fx.codes)
        )
        await _insert(services.engine, tables.authorization_codes, rows)

    async def _seed_refresh(self, services: Services, now: int) -> None:
        pepper, fx = services.master.pepper, self.fixtures
        families, tokens = [], []
        for value in _values(fx.refresh):
            family_id = secrets.token_urlsafe(16)
            families.append(
                {
                    "family_id": family_id,
                    "client_id": fx.web_client.client_id,
                    "subject": self.user_id,
                    "scope": "openid api:read",
                    "session_id": None,
                    "auth_time": now,
                    "code_hash": None,
                    "created_at": now,
                    "revoked_at": None,
                    "revoked_reason": None,
                }
            )
            tokens.append(
                {
                    "token_hash": keyed_hash(pepper, value),
                    "family_id": family_id,
                    "scope": "openid api:read",
                    "issued_at": now,
                    "expires_at": now + 30 * 86400,
                    "rotated_at": None,
                    "successor_hash": None,
                    "successor_sealed": None,
                }
            )
        await _insert(services.engine, tables.refresh_families, iter(families))
        await _insert(services.engine, tables.refresh_tokens, iter(tokens))

    async def _fill(self, count: int) -> None:
        services = await open_services(self.settings(), create_keys=False)
        now = services.clock.now()
        client_id = self.fixtures.opaque_client.client_id
        rows = (
            {
                "jti": secrets.token_urlsafe(16),
                "token_hash": os.urandom(32),
                "client_id": client_id,
                "subject": client_id,
                "scope": "api:read",
                "audience": RESOURCE,
                "format": "opaque",
                "family_id": None,
                "code_hash": None,
                "issued_at": now,
                "expires_at": now + 3600,
                "revoked_at": None,
            }
            for _ in range(count)
        )
        try:
            await _insert(services.engine, tables.issued_tokens, rows)
        finally:
            await services.close()

    def _issue_opaque_token(self) -> str:
        client = self.fixtures.opaque_client
        request = urllib.request.Request(  # noqa: S310 (loopback)
            self.base_url + self.token_path,
            data=b"grant_type=client_credentials&scope=api%3Aread",
            headers={"Authorization": client.basic},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return str(json.load(response)["access_token"])


def _values(paths: tuple[Path, ...]) -> Iterator[str]:
    for path in paths:
        yield from path.read_text().split()


async def _insert(engine: Any, table: sa.Table, rows: Iterator[dict[str, Any]]) -> None:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == _BATCH:
            async with engine.begin() as conn:
                await conn.execute(sa.insert(table), batch)
            batch = []
    if batch:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(table), batch)


def _postgres(statement: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def _tokensmith() -> str:
    return str(Path(sys.executable).with_name("tokensmith"))
