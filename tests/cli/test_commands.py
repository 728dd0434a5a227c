"""The CLI contract: command names, --json output, secrets shown once, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import Database, assert_one_line_error, cli_env, run_cli


@pytest.fixture
def env(tmp_path: Path, database: Database) -> dict[str, str]:
    return cli_env(tmp_path / "var", database)


def dump(database: Database, tmp_path: Path) -> bytes:
    """Everything the database holds, as bytes, to search for secrets that must not be there."""
    if database.backend == "sqlite":
        db = Path(database.url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    import asyncio

    import asyncpg

    from tests.support import POSTGRES_URL

    async def read() -> bytes:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            out = []
            tables = await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
                database.schema,
            )
            for row in tables:
                query = f'SELECT * FROM {database.schema}."{row[0]}"'  # noqa: S608 - test-made names
                records = await conn.fetch(query)
                out.extend(repr(dict(r)).encode() for r in records)
            return b"\n".join(out)
        finally:
            await conn.close()

    return asyncio.run(read())


def test_client_lifecycle(env: dict[str, str], database: Database, tmp_path: Path) -> None:
    created = run_cli(
        [
            "clients",
            "create",
            "--name",
            "Orders",
            "--grant-type",
            "client_credentials",
            "--scope",
            "orders:read orders:write",
            "--json",
        ],
        env,
    )
    assert created.code == 0, created.stderr
    body = created.json()
    client_id, secret = body["client_id"], body["client_secret"]
    assert secret.startswith("tscs_")
    assert body["grant_types"] == ["client_credentials"]
    assert body["scope"] == "orders:read orders:write"
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert secret not in created.stderr

    shown = run_cli(["clients", "show", client_id, "--json"], env).json()
    assert "client_secret" not in shown
    assert shown["name"] == "Orders"
    listed = run_cli(["clients", "list", "--json"], env).json()
    # Beside the built-in client of the command line itself (runtime/cli_client.py).
    assert sorted(c["client_id"] for c in listed["clients"]) == sorted(
        [client_id, "tokensmith-cli"]
    )
    human = run_cli(["clients", "list"], env)
    assert client_id in human.stdout
    assert "CLIENT ID" in human.stdout

    rotated = run_cli(["clients", "rotate-secret", client_id, "--grace", "1h", "--json"], env)
    assert rotated.code == 0, rotated.stderr
    new_secret = rotated.json()["client_secret"]
    assert new_secret != secret
    assert rotated.json()["previous_secret_expires_at"] is not None

    contents = dump(database, tmp_path)
    for value in (secret, new_secret):
        assert value.encode() not in contents  # only keyed hashes are stored

    deleted = run_cli(["clients", "delete", client_id, "--json"], env)
    assert deleted.json() == {
        "client_id": client_id,
        "deleted": True,
        "families_revoked": 0,
        "tokens_revoked": 0,
    }
    assert_one_line_error(run_cli(["clients", "show", client_id], env), "no client")


def test_client_options(env: dict[str, str]) -> None:
    args = [
        "clients", "create", "--name", "Billing", "--grant-type", "client_credentials",
        "--auth-method", "client_secret_post", "--token-format", "opaque",
        "--access-token-ttl", "2m", "--resource", "https://billing.example.com",
        "--cors-origin", "https://billing.example.com",
        "--post-logout-redirect-uri", "https://billing.example.com/bye",
        "--refresh-token-ttl", "14d", "--refresh-grace", "10s", "--json",
    ]  # fmt: skip
    result = run_cli(args, env)
    assert result.code == 0, result.stderr
    body = result.json()
    assert body["token_endpoint_auth_method"] == "client_secret_post"
    assert body["access_token_format"] == "opaque"
    assert body["access_token_ttl"] == 120
    assert body["allowed_resources"] == ["https://billing.example.com"]
    assert body["cors_origins"] == ["https://billing.example.com"]
    assert body["post_logout_redirect_uris"] == ["https://billing.example.com/bye"]
    assert body["refresh_token_ttl"] == 14 * 86400
    assert body["refresh_grace"] == 10


def test_public_client_gets_no_secret(env: dict[str, str]) -> None:
    result = run_cli(
        [
            "clients",
            "create",
            "--name",
            "CLI app",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1/callback",
            "--json",
        ],
        env,
    )
    assert result.code == 0, result.stderr
    body = result.json()
    assert "client_secret" not in body
    assert body["token_endpoint_auth_method"] == "none"
    assert body["grant_types"] == ["authorization_code", "refresh_token"]


def test_users_and_keys(env: dict[str, str]) -> None:
    made = run_cli(
        [
            "users",
            "create",
            "--username",
            "alice",
            "--email",
            "alice@example.com",
            "--password-stdin",
            "--json",
        ],
        env,
        stdin="correct horse battery\n",
    )
    assert made.code == 0, made.stderr
    assert made.json()["username"] == "alice"
    assert "correct horse" not in made.stdout + made.stderr
    again = run_cli(
        ["users", "create", "--username", "alice", "--password-stdin"], env, "another pw\n"
    )
    assert_one_line_error(again, "already exists")
    assert [u["username"] for u in run_cli(["users", "list", "--json"], env).json()["users"]] == [
        "alice"
    ]

    keys = run_cli(["keys", "list", "--json"], env)
    assert keys.code == 0, keys.stderr
    assert keys.json()["keys"] == []  # keys are made by the server's first start, not by list
    refused = run_cli(["keys", "rotate"], env)
    assert_one_line_error(refused, "JWKS cache lifetime", "--force")
    rotated = run_cli(["keys", "rotate", "--force", "--json"], env)
    assert rotated.code == 0, rotated.stderr
    states = sorted(k["state"] for k in rotated.json()["keys"])
    assert states == ["active", "next", "retiring"]
    assert run_cli(["keys", "list", "--json"], env).json()["keys"][0]["state"] == "active"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["clients", "create", "--name", "x", "--grant-type", "password"],
            "unsupported grant type",
        ),
        (
            ["clients", "create", "--name", "x", "--grant-type", "implicit"],
            "unsupported grant type",
        ),
        (
            ["clients", "create", "--name", "x", "--public", "--grant-type", "client_credentials"],
            "public client",
        ),
        (
            ["clients", "create", "--name", "x", "--grant-type", "authorization_code"],
            "redirect-uri",
        ),
        (
            [
                "clients",
                "create",
                "--name",
                "x",
                "--grant-type",
                "authorization_code",
                "--redirect-uri",
                "https://app.example.com/cb#frag",
            ],
            "fragment",
        ),
        (
            [
                "clients",
                "create",
                "--name",
                "x",
                "--grant-type",
                "authorization_code",
                "--redirect-uri",
                "http://app.example.com/cb",
            ],
            "loopback",
        ),
        (["clients", "create", "--name", "x", "--scope", 'bad"scope'], "not a valid scope"),
        (["clients", "create", "--name", ""], "client name"),
        (["clients", "show", "x' OR '1'='1"], "no client"),
        (["clients", "create", "--name", "x", "--token-format", "xml"], "jwt or opaque"),
        (["clients", "create", "--name", "x", "--auth-method", "client_secret_jwt"], "auth method"),
        (
            [
                "clients",
                "create",
                "--name",
                "x",
                "--public",
                "--auth-method",
                "client_secret_post",
                "--redirect-uri",
                "https://a.example/cb",
            ],
            "public client",
        ),
        (["clients", "create", "--name", "x", "--resource", "https://a.example/#f"], "resource"),
        (
            ["clients", "create", "--name", "x", "--access-token-ttl", "forever"],
            "--access-token-ttl",
        ),
        (["clients", "create", "--name", "x", "--cors-origin", "https://a.example/p"], "origin"),
        (["clients", "create", "--name", "x", "--cors-origin", "http://a.example"], "loopback"),
        (["clients", "create", "--name", "x", "--cors-origin", "*"], "origin"),
        (["clients", "create", "--name", "x", "--refresh-grace", "5m"], "grace window"),
        (["clients", "create", "--name", "x", "--refresh-token-ttl", "5s"], "at least 60"),
        (
            ["clients", "create", "--name", "x", "--post-logout-redirect-uri", "https://a/#x"],
            "fragment",
        ),
        (["clients", "rotate-secret", "nope", "--grace", "soon"], "--grace"),
        (["users", "create", "--username", "bob"], "--password-stdin"),
        (["users", "create", "--username", "bad name", "--password-stdin"], "username"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], fragment: str) -> None:
    env = cli_env(tmp_path / "var", None)
    assert_one_line_error(run_cli(args, env, stdin="a good password\n"), fragment)


def test_short_password_is_refused(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "var", None)
    result = run_cli(["users", "create", "--username", "bob", "--password-stdin"], env, "short\n")
    assert_one_line_error(result, "password")


def test_every_json_flag_prints_one_object(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "var", None)
    for args in (
        ["version"],
        ["master-key", "generate"],
        ["clients", "list"],
        ["keys", "list"],
        ["users", "list"],
    ):
        result = run_cli([*args, "--json"], env)
        assert result.code == 0, result.stderr
        assert isinstance(json.loads(result.stdout), dict)
        assert result.stdout.count("\n") == 1


@pytest.mark.backends("sqlite", "postgresql")
def test_migrate_is_idempotent(env: dict[str, str]) -> None:
    first = run_cli(["migrate"], env)
    assert first.code == 0, first.stderr
    assert "migrated" in first.stdout
    second = run_cli(["migrate"], env)
    assert "up to date" in second.stdout


def test_master_key_generate_is_fresh_each_time(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "var", None)
    one = run_cli(["master-key", "generate"], env).stdout.strip()
    two = run_cli(["master-key", "generate"], env).stdout.strip()
    assert one != two
    assert len(one) == 43


def test_help_lists_the_contract(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "var", None)
    top = run_cli(["--help"], env).stdout
    for command in ("serve", "migrate", "clients", "users", "keys"):
        assert command in top
    clients = run_cli(["clients", "--help"], env).stdout
    for command in ("create", "list", "show", "rotate-secret", "delete"):
        assert command in clients


HEAVY = ("sqlalchemy", "alembic", "argon2", "prometheus_client", "starlette", "fastapi", "uvicorn")


@pytest.mark.parametrize("args", [["--help"], ["version"], ["master-key", "generate"]])
def test_commands_without_the_server_do_not_import_it(args: list[str]) -> None:
    # Every call of the command line pays for its imports: the server's modules are loaded by
    # the commands that use them, not by starting the program. A fresh interpreter, since this
    # one has imported everything already.
    script = (
        "import sys\n"
        "from tokensmith.cli.main import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        f"print([name for name in {HEAVY!r} if name in sys.modules], file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "[]"
