"""``clients create/update --id-token-encryption/--userinfo-encryption``: checked against the
client's JWKS, shown by ``clients show``, refused in one line (SECURITY.md case 121)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from joserfc.jwk import ECKey, RSAKey

from tests.support import Database, assert_one_line_error, cli_env, run_cli

CB = "https://rp.example.com/cb"


@pytest.fixture
def env(tmp_path: Path, database: Database) -> dict[str, str]:
    return cli_env(tmp_path / "var", database)


def jwks_file(tmp_path: Path, *keys: dict[str, object]) -> str:
    path = tmp_path / f"jwks-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps({"keys": list(keys)}))
    return str(path)


def create(env: dict[str, str], *extra: str) -> list[str]:
    return ["clients", "create", "--name", "rp", "--grant-type", "authorization_code",
            "--redirect-uri", CB, "--scope", "openid", *extra]  # fmt: skip


def test_encryption_is_set_shown_changed_and_turned_off(
    env: dict[str, str], tmp_path: Path
) -> None:
    rsa = RSAKey.generate_key(2048, parameters={"kid": "r", "use": "enc"}).as_dict(private=False)
    ec = ECKey.generate_key("P-256", parameters={"kid": "e", "use": "enc"}).as_dict(private=False)
    jwks = jwks_file(tmp_path, rsa, ec)
    made = run_cli(
        [*create(env, "--jwks-file", jwks, "--id-token-encryption", "RSA-OAEP-256", "--json")],
        env,
    )
    assert made.code == 0, made.stderr
    body = made.json()
    assert body["id_token_encrypted_response_alg"] == "RSA-OAEP-256"
    assert body["id_token_encrypted_response_enc"] == "A256GCM"
    assert body["userinfo_encrypted_response_alg"] is None
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["client_secret"].startswith("tscs_")  # encryption keys are no credential
    client_id = body["client_id"]
    changed = run_cli(
        ["clients", "update", client_id, "--userinfo-encryption", "ECDH-ES+A256KW:A256GCM"], env
    )
    assert changed.code == 0, changed.stderr
    shown = run_cli(["clients", "show", client_id], env).stdout
    assert "ID tokens:     encrypted with RSA-OAEP-256 / A256GCM" in shown
    assert "userinfo:      encrypted with ECDH-ES+A256KW / A256GCM" in shown
    off = run_cli(["clients", "update", client_id, "--id-token-encryption", "none", "--json"], env)
    assert off.json()["id_token_encrypted_response_alg"] is None
    assert off.json()["userinfo_encrypted_response_alg"] == "ECDH-ES+A256KW"


def test_encryption_refusals_are_one_line(env: dict[str, str], tmp_path: Path) -> None:
    ec = ECKey.generate_key("P-256", parameters={"use": "enc"}).as_dict(private=False)
    jwks = jwks_file(tmp_path, ec)
    small = RSAKey.generate_key(2048).as_dict(private=False)
    weak = jwks_file(tmp_path, {**small, "n": small["n"][:170], "use": "enc"})
    for extra, fragment in (
        (["--id-token-encryption", "RSA-OAEP-256"], "no RSA-OAEP-256 encryption key"),
        (["--jwks-file", jwks, "--id-token-encryption", "RSA1_5"], "not supported"),
        (["--jwks-file", jwks, "--userinfo-encryption", "dir"], "not supported"),
        (["--jwks-file", jwks, "--id-token-encryption", "ECDH-ES:A128GCM"], "only A256GCM"),
        (["--jwks-file", jwks, "--id-token-encryption", ":A256GCM"], "name the key management"),
        (["--jwks-file", jwks, "--id-token-encryption", "RSA-OAEP-256"], "no RSA-OAEP-256"),
        (["--jwks-file", weak, "--id-token-encryption", "RSA-OAEP-256"], "--jwks-file"),
    ):
        assert_one_line_error(run_cli(create(env, *extra), env), fragment)
    plain = run_cli([*create(env), "--json"], env).json()
    assert_one_line_error(
        run_cli(["clients", "update", plain["client_id"], "--id-token-encryption", "ECDH-ES"], env),
        "no ECDH-ES encryption key",
    )
