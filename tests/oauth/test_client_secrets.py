"""Client secrets carry a type prefix and a checksum, like API keys (oauth/clients.py)."""

from __future__ import annotations

from tests.support import OFFERED
from tokensmith.core.secrets import keyed_hash, random_token
from tokensmith.oauth.clients import (
    CLIENT_SECRET_PATTERN,
    NewClient,
    generate_client_secret,
    is_client_secret,
    secret_matches,
)

PEPPER = b"p" * 32


def flip(secret: str, at: int) -> str:
    replacement = "A" if secret[at] != "A" else "B"
    return secret[:at] + replacement + secret[at + 1 :]


def test_a_new_secret_has_the_scanner_shape_and_a_valid_checksum() -> None:
    secret = generate_client_secret()
    assert secret.startswith("tscs_") and len(secret) == 5 + 43 + 6
    assert CLIENT_SECRET_PATTERN.fullmatch(secret)
    assert is_client_secret(secret)
    assert generate_client_secret() != secret


def test_any_changed_character_breaks_the_checksum() -> None:
    secret = generate_client_secret()
    for at in range(5, len(secret)):
        assert not is_client_secret(flip(secret, at))
    assert not is_client_secret(secret[:-1])
    assert not is_client_secret(secret + "0")
    assert not is_client_secret("tsk_" + secret[4:])


def test_a_bad_checksum_is_refused_before_hashing_and_old_secrets_still_work() -> None:
    forged = flip(generate_client_secret(), 20)
    legacy = random_token(32, "tscs_")  # the shape issued before checksums
    for secret in (forged, legacy):
        client = NewClient("c").validated("c1", keyed_hash(PEPPER, secret), 0, offered=OFFERED)
        # The forged secret's hash is even the stored one: only the checksum refuses it.
        assert secret_matches(client, PEPPER, secret, 0) is (secret == legacy)


def test_client_ids_never_look_like_an_option() -> None:
    """1 in 64 base64url ids began with "-", which a command line reads as an option."""
    from tokensmith.oauth.clients import generate_client_id

    ids = {generate_client_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 22 and i.isascii() and i.isalnum() for i in ids)
