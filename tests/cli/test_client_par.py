"""``clients create/update --require-par``: a client that may use only pushed requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import Database, assert_one_line_error, cli_env, run_cli


@pytest.fixture
def env(tmp_path: Path, database: Database) -> dict[str, str]:
    return cli_env(tmp_path / "var", database)


def test_par_is_required_at_creation_or_later_and_shown(env: dict[str, str]) -> None:
    base = ["clients", "create", "--redirect-uri", "https://app.example.com/cb"]
    base += ["--grant-type", "authorization_code"]
    strict = run_cli([*base, "--name", "strict", "--require-par", "--json"], env).json()
    plain = run_cli([*base, "--name", "plain", "--json"], env).json()
    assert strict["require_pushed_authorization_requests"] is True
    assert plain["require_pushed_authorization_requests"] is False

    required = run_cli(["clients", "update", plain["client_id"], "--require-par", "--json"], env)
    assert required.code == 0, required.stderr
    assert required.json()["require_pushed_authorization_requests"] is True
    relaxed = run_cli(["clients", "update", strict["client_id"], "--no-require-par"], env)
    assert relaxed.code == 0 and "requires PAR:  no" in relaxed.stdout
    shown = run_cli(["clients", "show", plain["client_id"]], env)
    assert "requires PAR:  yes" in shown.stdout
    trail = run_cli(["audit", "--event", "client.updated", "--json"], env).json()
    assert [e["detail"] for e in trail["events"]] == [
        {"require_pushed_authorization_requests": False},
        {"require_pushed_authorization_requests": True},
    ]


def test_requiring_par_of_no_client_is_one_line(env: dict[str, str]) -> None:
    assert_one_line_error(
        run_cli(["clients", "update", "nobody", "--require-par"], env), "no client"
    )
