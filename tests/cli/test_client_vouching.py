"""``clients create --may-vouch-client-ip`` and ``clients update``: who may name client_ip."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import Database, assert_one_line_error, cli_env, run_cli


@pytest.fixture
def env(tmp_path: Path, database: Database) -> dict[str, str]:
    return cli_env(tmp_path / "var", database)


def test_vouching_is_granted_at_creation_or_later_and_withdrawn(env: dict[str, str]) -> None:
    base = ["clients", "create", "--grant-type", "client_credentials", "--json"]
    gateway = run_cli([*base, "--name", "gateway", "--may-vouch-client-ip"], env).json()
    plain = run_cli([*base, "--name", "svc"], env).json()
    assert gateway["may_vouch_client_ip"] is True and plain["may_vouch_client_ip"] is False

    granted = run_cli(
        ["clients", "update", plain["client_id"], "--may-vouch-client-ip", "--json"], env
    )
    assert granted.code == 0, granted.stderr
    assert granted.json()["may_vouch_client_ip"] is True
    withdrawn = run_cli(
        ["clients", "update", gateway["client_id"], "--no-may-vouch-client-ip", "--json"], env
    )
    assert withdrawn.json()["may_vouch_client_ip"] is False
    shown = run_cli(["clients", "show", gateway["client_id"], "--json"], env).json()
    assert shown["may_vouch_client_ip"] is False
    trail = run_cli(["audit", "--event", "client.updated", "--json"], env).json()
    assert [e["detail"] for e in trail["events"]] == [
        {"may_vouch_client_ip": False},
        {"may_vouch_client_ip": True},
    ]


def test_update_refusals_are_one_line(env: dict[str, str]) -> None:
    public = run_cli(
        ["clients", "create", "--name", "app", "--public", "--redirect-uri",
         "http://127.0.0.1/cb", "--json"],
        env,
    ).json()  # fmt: skip
    assert_one_line_error(
        run_cli(["clients", "update", public["client_id"], "--may-vouch-client-ip"], env),
        "public",
    )
    assert_one_line_error(run_cli(["clients", "update", public["client_id"]], env), "name a change")
    assert_one_line_error(
        run_cli(["clients", "update", "nobody", "--may-vouch-client-ip"], env), "no client"
    )
    created = run_cli(
        ["clients", "create", "--name", "x", "--public", "--redirect-uri", "http://127.0.0.1/cb",
         "--may-vouch-client-ip"],
        env,
    )  # fmt: skip
    assert_one_line_error(created, "public client cannot vouch")
