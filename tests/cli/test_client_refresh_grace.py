"""``clients create/update --refresh-grace``: a client's own duplicate-refresh window."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import Database, assert_one_line_error, cli_env, run_cli


@pytest.fixture
def env(tmp_path: Path, database: Database) -> dict[str, str]:
    return cli_env(tmp_path / "var", database)


def test_the_window_is_the_servers_unless_set_and_can_change(env: dict[str, str]) -> None:
    base = ["clients", "create", "--redirect-uri", "https://app.example.com/cb"]
    base += ["--grant-type", "authorization_code", "--grant-type", "refresh_token"]
    plain = run_cli([*base, "--name", "plain", "--json"], env).json()
    assert plain["refresh_grace"] is None  # the server's TOKENSMITH_REFRESH_GRACE
    own = run_cli([*base, "--name", "own", "--refresh-grace", "30s", "--json"], env).json()
    assert own["refresh_grace"] == 30

    strict = run_cli(["clients", "update", plain["client_id"], "--refresh-grace", "0"], env)
    assert strict.code == 0, strict.stderr
    assert "refresh grace: off" in strict.stdout
    back = run_cli(["clients", "update", own["client_id"], "--refresh-grace", "default"], env)
    assert "refresh grace: the server's" in back.stdout
    shown = run_cli(["clients", "show", own["client_id"], "--json"], env).json()
    assert shown["refresh_grace"] is None
    trail = run_cli(["audit", "--event", "client.updated", "--json"], env).json()
    assert [e["detail"] for e in trail["events"]] == [
        {"refresh_grace": None},
        {"refresh_grace": 0},
    ]


@pytest.mark.parametrize("value", ["3m", "-1s", "soon"])
def test_a_window_out_of_bounds_changes_nothing(env: dict[str, str], value: str) -> None:
    base = ["clients", "create", "--name", "x", "--grant-type", "client_credentials", "--json"]
    client = run_cli(base, env).json()
    result = run_cli(["clients", "update", client["client_id"], "--refresh-grace", value], env)
    assert result.code != 0
    assert_one_line_error(result, "grace window" if value == "3m" else "not a duration")
    shown = run_cli(["clients", "show", client["client_id"], "--json"], env).json()
    assert shown["refresh_grace"] is None
