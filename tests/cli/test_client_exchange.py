"""``clients create``/``update`` with the token exchange flags, and ``clients show``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import Database, assert_one_line_error, cli_env, run_cli
from tokensmith.oauth.exchange_policy import TOKEN_EXCHANGE_GRANT

ORDERS = "https://orders.example.com"


@pytest.fixture
def env(tmp_path: Path, database: Database) -> dict[str, str]:
    return cli_env(tmp_path / "var", database)


def test_a_policy_is_set_shown_and_replaced(env: dict[str, str]) -> None:
    created = run_cli(
        ["clients", "create", "--name", "orders", "--grant-type", TOKEN_EXCHANGE_GRANT,
         "--exchange-audience", ORDERS, "--exchange-audience", "https://billing.example.com",
         "--exchange-subject-type", "api_key", "--exchange-subject-type", "access_token",
         "--json"],
        env,
    )  # fmt: skip
    assert created.code == 0, created.stderr
    policy = created.json()["token_exchange"]
    assert policy["audiences"] == [ORDERS, "https://billing.example.com"]
    assert policy["subject_types"] == ["api_key", "access_token"]
    assert policy["allow_impersonation"] is True and policy["txn_tokens"] is False
    client_id = created.json()["client_id"]
    shown = run_cli(["clients", "show", client_id], env)
    assert "exchange to:   " + ORDERS in shown.stdout
    assert "subjects:      api_key access_token; actors: any" in shown.stdout

    updated = run_cli(
        ["clients", "update", client_id, "--exchange-txn-tokens", "--exchange-delegation-only",
         "--exchange-actor", "svc-gateway", "--json"],
        env,
    )  # fmt: skip
    assert updated.code == 0, updated.stderr
    assert updated.json()["token_exchange"] == {
        "audiences": [],
        "accept_audiences": [],
        "subject_types": ["access_token"],
        "allow_impersonation": False,
        "txn_tokens": True,
        "actors": ["svc-gateway"],
    }
    trail = run_cli(["audit", "--event", "client.updated", "--json"], env).json()
    assert trail["events"][0]["detail"]["token_exchange"]["txn_tokens"] is True


def test_bad_policies_are_refused_in_one_line(env: dict[str, str]) -> None:
    base = ["clients", "create", "--name", "x", "--grant-type", TOKEN_EXCHANGE_GRANT]
    assert_one_line_error(run_cli([*base, "--exchange-audience", "orders"], env), "audience")
    assert_one_line_error(run_cli([*base, "--exchange-subject-type", "saml"], env), "subject types")
    no_grant = ["clients", "create", "--name", "y", "--grant-type", "client_credentials"]
    assert_one_line_error(run_cli([*no_grant, "--exchange-txn-tokens"], env), "grant")
    plain = run_cli([*no_grant, "--json"], env).json()
    assert_one_line_error(
        run_cli(["clients", "update", plain["client_id"], "--exchange-txn-tokens"], env),
        "does not use",
    )
    public = run_cli(
        ["clients", "create", "--name", "app", "--public", "--redirect-uri",
         "http://127.0.0.1/cb", "--json"],
        env,
    ).json()  # fmt: skip
    assert_one_line_error(
        run_cli(["clients", "update", public["client_id"], "--exchange-txn-tokens"], env),
        "public",
    )
    assert_one_line_error(
        run_cli([*base, "--public", "--redirect-uri", "http://127.0.0.1/cb"], env), "public"
    )
