"""Lockouts across two server processes sharing Redis, and a server whose Redis is gone."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from tests.cli.test_serve import process, serve
from tests.support import (
    METRICS_AUTH,
    REDIS_URL,
    Database,
    ServerThread,
    cli_env,
    free_port,
    refused_port,
    run_cli,
    wait_until_serving,
)
from tokensmith.core.sealing import generate_master_key
from tokensmith.settings import Settings

pytestmark = pytest.mark.slow


def test_two_processes_share_lockouts_through_redis(
    tmp_path: Path, database: Database, redis_prefix: str
) -> None:
    shared = {
        "TOKENSMITH_REDIS_URL": REDIS_URL,
        "TOKENSMITH_REDIS_KEY_PREFIX": redis_prefix,
        "TOKENSMITH_LOCKOUT_CLIENT_FAILURES": "4",
        "TOKENSMITH_MASTER_KEY": generate_master_key(),
    }
    if database.backend == "sqlite":  # both processes on one database file
        shared["TOKENSMITH_DATABASE_URL"] = f"sqlite:///{tmp_path / 'shared.db'}"
    env_a = cli_env(tmp_path / "a", database, **shared)
    env_b = cli_env(tmp_path / "b", database, **shared)
    port_a, port_b = free_port(), free_port()
    with process(serve(env_a, port_a), env_a, tmp_path) as a:
        wait_until_serving(f"http://127.0.0.1:{port_a}", lambda: a.poll() is None)
        with process(serve(env_b, port_b), env_b, tmp_path) as b:
            wait_until_serving(f"http://127.0.0.1:{port_b}", lambda: b.poll() is None)
            created = run_cli(
                [
                    "clients",
                    "create",
                    "--name",
                    "w",
                    "--grant-type",
                    "client_credentials",
                    "--json",
                ],
                env_a,
            ).json()
            client_id, secret = created["client_id"], created["client_secret"]
            form = {"grant_type": "client_credentials"}
            nodes = [f"http://127.0.0.1:{port}/token" for port in (port_a, port_b)]
            for url in nodes * 2:  # two failures on each node: four in all
                assert httpx.post(url, data=form, auth=(client_id, "wrong")).status_code == 401
            for url in nodes:  # each node alone saw two, under the limit; together, four
                assert httpx.post(url, data=form, auth=(client_id, secret)).status_code == 429

            cleared = run_cli(["lockouts", "clear", "--client", client_id], env_a)
            assert cleared.code == 0, cleared.stderr
            for url in nodes:
                assert httpx.post(url, data=form, auth=(client_id, secret)).status_code == 200
            trail = run_cli(["audit", "--event", "lockout.cleared", "--json"], env_a).json()
            assert trail["events"][0]["detail"] == {"client": client_id}


def test_a_server_whose_redis_is_gone_keeps_limits_per_node(settings: Settings) -> None:
    closed = f"redis://127.0.0.1:{refused_port()}/0"
    degraded = settings.model_copy(
        update={
            "redis_url": closed,
            "lockout_address_failures": 3,
            "webhook_secret": SecretStr("x"),
        }
    )
    with ServerThread(degraded) as server, httpx.Client(base_url=server.base_url) as http:
        from tokensmith.apikeys.format import generate_api_key

        statuses = [
            http.post(
                "/api-keys/verify", headers={"x-api-key": generate_api_key("test").text}
            ).status_code
            for _ in range(4)
        ]
        assert statuses == [401, 401, 401, 429]  # limits still hold, and nothing failed with 500
        assert (
            "tokensmith_rate_limits_shared 0.0" in http.get("/metrics", headers=METRICS_AUTH).text
        )
        assert http.get("/readyz").status_code == 200


def test_lockouts_clear_needs_redis(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "var", None)
    result = run_cli(["lockouts", "clear", "--account", "alice"], env)
    assert result.code == 2 and "TOKENSMITH_REDIS_URL" in result.stderr
    result = run_cli(["lockouts", "clear"], env)
    assert result.code == 2 and "name an" in result.stderr
