"""``clients create/update --dpop-bound-access-tokens``: a client whose token requests must
carry a DPoP proof (RFC 9449 §5.2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import Database, cli_env, run_cli


@pytest.fixture
def env(tmp_path: Path, database: Database) -> dict[str, str]:
    return cli_env(tmp_path / "var", database)


def test_dpop_binding_is_set_at_creation_or_later_and_shown(env: dict[str, str]) -> None:
    base = ["clients", "create", "--grant-type", "client_credentials", "--json"]
    bound = run_cli([*base, "--name", "bound", "--dpop-bound-access-tokens"], env).json()
    plain = run_cli([*base, "--name", "svc"], env).json()
    assert bound["dpop_bound_access_tokens"] is True
    assert plain["dpop_bound_access_tokens"] is False

    required = run_cli(
        ["clients", "update", plain["client_id"], "--dpop-bound-access-tokens", "--json"], env
    )
    assert required.code == 0, required.stderr
    assert required.json()["dpop_bound_access_tokens"] is True
    released = run_cli(
        ["clients", "update", bound["client_id"], "--no-dpop-bound-access-tokens"], env
    )
    assert released.code == 0, released.stderr
    assert "DPoP required: no" in released.stdout
    shown = run_cli(["clients", "show", plain["client_id"]], env)
    assert "DPoP required: yes" in shown.stdout
    trail = run_cli(["audit", "--event", "client.updated", "--json"], env).json()
    assert {"dpop_bound_access_tokens": True} in [e["detail"] for e in trail["events"]]
