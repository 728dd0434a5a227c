"""``tokensmith api-keys``: the whole life of a key from the command line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.cli.test_commands import dump
from tests.support import Database, assert_one_line_error, cli_env, run_cli
from tokensmith.apikeys.verifier import ApiKeyRefused
from tokensmith.runtime.services import open_services
from tokensmith.settings import load_settings


@pytest.fixture
def env(tmp_path: Path, database: Database) -> dict[str, str]:
    return cli_env(tmp_path / "var", database)


def verify(env: dict[str, str], key: str) -> str:
    """What the server's verifier says of a key: its id, or the reason it refuses it."""

    async def run() -> str:
        settings = load_settings(
            var_dir=env["TOKENSMITH_VAR_DIR"],
            database_url=env["TOKENSMITH_DATABASE_URL"],
            database_schema=env.get("TOKENSMITH_DATABASE_SCHEMA"),
        )
        services = await open_services(settings, create_keys=False)
        try:
            return (await services.key_verifier.verify(key)).key_id
        except ApiKeyRefused as refused:
            return refused.reason
        finally:
            await services.close()

    return asyncio.run(run())


def test_api_key_lifecycle(env: dict[str, str], database: Database, tmp_path: Path) -> None:
    created = run_cli(
        [
            "api-keys", "create", "--name", "nightly export", "--scope", "reports:read",
            "--expires-in", "30d", "--allow-ip", "10.0.0.0/8", "--rate-limit", "60",
            "--owner", "team-data", "--json",
        ],
        env,
    )  # fmt: skip
    assert created.code == 0, created.stderr
    key = created.json()["key"]
    key_id = created.json()["key_id"]
    assert created.json()["allowed_cidrs"] == ["10.0.0.0/8"]
    assert verify(env, key) == "forbidden_source"  # the CLI process has no address in 10/8

    plain = run_cli(["api-keys", "create", "--name", "ci", "--scope", "deploy"], env)
    assert "Store the key now" in plain.stdout and "tsk_test_" in plain.stdout
    ci_key = next(w for w in plain.stdout.split() if w.startswith("tsk_test_"))
    ci_id = ci_key.split("_")[2]
    assert verify(env, ci_key) == ci_id

    listing = run_cli(["api-keys", "list"], env).stdout
    assert "PREFIX" in listing and "LAST USED" in listing
    assert key_id in listing and ci_id in listing and key not in listing
    owned = run_cli(["api-keys", "list", "--owner", "team-data", "--json"], env).json()
    assert [k["key_id"] for k in owned["keys"]] == [key_id]

    rotated = run_cli(["api-keys", "rotate", ci_id, "--grace", "1h", "--json"], env).json()
    assert rotated["key"] != ci_key
    assert verify(env, ci_key) == ci_id and verify(env, rotated["key"]) == rotated["key_id"]
    shown = run_cli(["api-keys", "show", ci_id, "--json"], env).json()
    assert shown["status"] == "rotating" and shown["replaced_by"] == rotated["key_id"]

    revoked = run_cli(["api-keys", "revoke", rotated["key_id"]], env)
    assert revoked.code == 0 and "revoked" in revoked.stdout
    assert verify(env, rotated["key"]) == "revoked"

    client = run_cli(
        ["clients", "create", "--name", "batch", "--rate-limit", "120", "--json"], env
    ).json()
    assert client["rate_limit"] == 120
    trail = run_cli(["audit", "--since", "1h", "--json"], env).json()["events"]
    trail = [e for e in trail if e["event"].startswith("api_key.")]
    names = [e["event"] for e in reversed(trail)]
    assert names == [
        "api_key.created",
        "api_key.created",
        "api_key.rotated",
        "api_key.revoked",
    ]
    assert all(e["actor"].startswith("cli") for e in trail)
    table = run_cli(["audit", "--event", "api_key.rotated"], env).stdout.splitlines()
    assert table[0].split() == [
        "TIME", "EVENT", "OUTCOME", "ACTOR", "CLIENT", "SUBJECT", "SOURCE", "DETAIL"
    ]  # fmt: skip
    assert len(table) == 2 and "api_key.rotated" in table[1] and f'replaces="{ci_id}"' in table[1]

    everything = dump(database, tmp_path)
    for secret in (key, ci_key, rotated["key"]):
        assert secret.encode() not in everything


def test_api_key_errors_are_one_line(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "var", None)  # the default SQLite file; the backend plays no part
    assert_one_line_error(
        run_cli(["api-keys", "create", "--name", "x", "--scope", ""], env), "at least one scope"
    )
    assert_one_line_error(
        run_cli(["api-keys", "create", "--name", "x", "--scope", "a", "--expires-in", "soon"], env),
        "--expires-in",
    )
    assert_one_line_error(run_cli(["api-keys", "show", "AAAAAAAAAAAA"], env), "no API key")
    assert_one_line_error(run_cli(["audit", "--since", "lately"], env), "--since")
    assert run_cli(["audit"], env).stdout.strip() == "no audit events match"
    assert_one_line_error(run_cli(["api-keys", "revoke", "nope"], env), "no API key")
    assert_one_line_error(
        run_cli(["api-keys", "create", "--name", "x", "--scope", "a", "--allow-ip", "x"], env),
        "'x'",
    )
