"""Every refusal to start is one clear line and a non-zero exit; nothing is regenerated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import Database, assert_one_line_error, cli_env, run_cli
from tokensmith.core.sealing import generate_master_key

COMMANDS = [["serve", "--port", "1"], ["migrate"], ["clients", "list"], ["keys", "list"]]


@pytest.mark.parametrize("args", COMMANDS)
@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"TOKENSMITH_MODE": "prod"}, "TOKENSMITH_MODE"),
        ({"TOKENSMITH_SIGNING_ALG": "HS256"}, "TOKENSMITH_SIGNING_ALG"),
        (
            {"TOKENSMITH_MODE": "production", "TOKENSMITH_ISSUER": "https://a.example"},
            "TOKENSMITH_MASTER_KEY",
        ),
        ({"TOKENSMITH_DATABASE_URL": "mysql://root@127.0.0.1/test"}, "TOKENSMITH_DATABASE_URL"),
    ],
)
def test_bad_settings(
    tmp_path: Path, args: list[str], extra: dict[str, str], fragment: str
) -> None:
    env = cli_env(tmp_path / "var", None, **extra)
    assert_one_line_error(run_cli(args, env), fragment)


def test_production_refuses_http_issuer(tmp_path: Path) -> None:
    env = cli_env(
        tmp_path / "var",
        None,
        TOKENSMITH_MODE="production",
        TOKENSMITH_MASTER_KEY=generate_master_key(),
        TOKENSMITH_ISSUER="http://auth.example.com",
    )
    assert_one_line_error(run_cli(["serve"], env), "TOKENSMITH_ISSUER", "https")


@pytest.mark.parametrize("args", [["serve", "--port", "1"], ["migrate"], ["clients", "list"]])
def test_unreachable_database(tmp_path: Path, args: list[str]) -> None:
    env = cli_env(
        tmp_path / "var",
        None,
        TOKENSMITH_DATABASE_URL="postgresql://tokensmith:hunter2@127.0.0.1:1/test",
    )
    result = run_cli(args, env)
    assert_one_line_error(result, "cannot reach the database", "127.0.0.1:1")
    assert "hunter2" not in result.stderr


def test_wrong_master_key_changes_nothing(tmp_path: Path, database: Database) -> None:
    first = cli_env(tmp_path / "var", database, TOKENSMITH_MASTER_KEY=generate_master_key())
    assert run_cli(["keys", "rotate", "--force"], first).code == 0  # creates the keys
    before = run_cli(["keys", "list", "--json"], first).json()
    assert len(before["keys"]) == 3

    stranger = {**first, "TOKENSMITH_MASTER_KEY": generate_master_key()}
    for args in (["serve", "--port", "1"], ["keys", "rotate", "--force"], ["clients", "list"]):
        assert_one_line_error(run_cli(args, stranger), "not the one this database was sealed with")
    assert run_cli(["keys", "list", "--json"], first).json() == before


def test_corrupted_master_key_file(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "var", None)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "master.key").write_text("not a key at all\n")
    assert_one_line_error(run_cli(["clients", "list"], env), "master.key", "32 random bytes")


def test_lost_master_key_file_is_not_regenerated(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "var", None)
    assert run_cli(["keys", "rotate", "--force"], env).code == 0
    key_file = tmp_path / "var" / "master.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    key_file.unlink()
    assert_one_line_error(run_cli(["keys", "list"], env), "is missing", "nothing was changed")
    assert not key_file.exists()


def test_production_master_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text(generate_master_key())
    key_file.chmod(0o644)
    env = cli_env(
        tmp_path / "var",
        None,
        TOKENSMITH_MODE="production",
        TOKENSMITH_ISSUER="https://auth.example.com",
        TOKENSMITH_MASTER_KEY_FILE=str(key_file),
    )
    assert_one_line_error(run_cli(["clients", "list"], env), "readable by others")
    key_file.chmod(0o600)
    # Production never migrates implicitly: it says what to run.
    assert_one_line_error(run_cli(["clients", "list"], env), "tokensmith migrate")
    assert run_cli(["migrate"], env).code == 0
    listed = run_cli(["clients", "list", "--json"], env)
    assert listed.code == 0, listed.stderr
    missing = {**env, "TOKENSMITH_MASTER_KEY_FILE": str(tmp_path / "absent.key")}
    assert_one_line_error(run_cli(["clients", "list"], missing), "does not exist")


def test_production_refuses_a_misspelt_variable(tmp_path: Path) -> None:
    env = cli_env(
        tmp_path / "var",
        None,
        TOKENSMITH_MODE="production",
        TOKENSMITH_ISSUER="https://auth.example.com",
        TOKENSMITH_MASTER_KEY=generate_master_key(),
        TOKENSMITH_DATABSE_URL="postgresql://db.internal/tokensmith",
    )
    result = run_cli(["migrate"], env)
    assert result.code == 1
    assert_one_line_error(
        result, "tokensmith: TOKENSMITH_DATABSE_URL", "did you mean TOKENSMITH_DATABASE_URL?"
    )
    assert not (tmp_path / "var").exists()  # refused before anything was touched


def test_development_warns_about_a_misspelt_variable_and_goes_on(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "var", None, TOKENSMITH_DATABSE_URL="sqlite:///elsewhere.db")
    result = run_cli(["clients", "list", "--json"], env)
    assert result.code == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    [warning] = [line for line in lines if "variable" in line]  # one, in the JSON log format
    assert warning["level"] == "warning"
    assert warning["variable"] == "TOKENSMITH_DATABSE_URL"
    assert warning["nearest_setting"] == "TOKENSMITH_DATABASE_URL"
    assert (tmp_path / "var" / "tokensmith.db").exists()  # the real setting's default was used
