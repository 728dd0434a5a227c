"""ID token validation (OIDC Core §3.1.3.7) and the JWT attacks of SECURITY.md that apply to a
client: alg none, HS256 with the public key, an embedded jwk, an unknown kid, a foreign or
prefix issuer, another audience, a missing azp, expired, iat in the future, a wrong nonce."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from tokensmith.client import IdTokenError
from tokensmith.client.id_tokens import validate_id_token
from tokensmith.guard import parse_jwks
from tokensmith.jose.jws import sign_jwt
from tokensmith.jose.keys import generate_signing_key

ISSUER = "https://auth.example.com"
KEY = generate_signing_key("ES256")
KEYS = parse_jwks({"keys": [KEY.public_jwk()]})
NOW = int(time.time())


def claims(**changes: Any) -> dict[str, Any]:
    body = {"iss": ISSUER, "sub": "user-1", "aud": "cli", "exp": NOW + 300, "iat": NOW,
            "nonce": "n-0123456789"}  # fmt: skip
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def check(token: str, nonce: str | None = "n-0123456789") -> dict[str, Any]:
    return validate_id_token(token, KEYS, issuer=ISSUER, client_id="cli", algorithms=["ES256"],
                             nonce=nonce, now=NOW)  # fmt: skip


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], body: dict[str, Any], signature: bytes = b"") -> str:
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(body).encode())
    return head + "." + b64(signature)


def test_a_valid_id_token() -> None:
    assert check(sign_jwt(KEY, claims()))["sub"] == "user-1"
    assert check(sign_jwt(KEY, claims(nonce=None)), nonce=None)["sub"] == "user-1"
    many = claims(aud=["cli", "other"], azp="cli")
    assert check(sign_jwt(KEY, many))["azp"] == "cli"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"iss": ISSUER + "/evil"}, "another issuer"),
        ({"iss": ISSUER[:-1]}, "another issuer"),
        ({"aud": "other"}, "another client"),
        ({"aud": ["cli", "other"]}, "azp"),
        ({"aud": ["cli", "other"], "azp": "other"}, "azp"),
        ({"exp": NOW - 120}, "expired"),
        ({"exp": "tomorrow"}, "expired"),
        ({"iat": NOW + 3600}, "iat"),
        ({"iat": None}, "iat"),
        ({"nonce": "n-other"}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"sub": ""}, "subject"),
    ],
)
def test_bad_claims_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(IdTokenError, match=message):
        check(sign_jwt(KEY, claims(**changes)))


def test_forged_tokens_are_refused() -> None:
    good = sign_jwt(KEY, claims())
    header = json.loads(base64.urlsafe_b64decode(good.split(".")[0] + "=="))
    for alg in ("none", "None", "NONE"):
        with pytest.raises(IdTokenError):
            check(unsigned({**header, "alg": alg}, claims()))
    public = json.dumps(KEY.public_jwk()).encode()
    head = b64(json.dumps({**header, "alg": "HS256"}).encode()) + "." + good.split(".")[1]
    forged = head + "." + b64(hmac.new(public, head.encode(), hashlib.sha256).digest())
    with pytest.raises(IdTokenError, match="algorithm"):
        check(forged)
    with pytest.raises(IdTokenError, match="refused member"):
        check(unsigned({**header, "jwk": KEY.public_jwk()}, claims(), b"x" * 64))
    with pytest.raises(IdTokenError, match="unknown key"):
        check(unsigned({**header, "kid": "../../dev/null"}, claims(), b"x" * 64))
    with pytest.raises(IdTokenError, match="signature"):
        check(unsigned(header, claims(), bytes(64)))  # CVE-2022-21449: all zeros
    with pytest.raises(IdTokenError):
        check(good + ".extra")
    with pytest.raises(IdTokenError, match="signature"):
        check(good.rsplit(".", 1)[0] + "." + sign_jwt(KEY, claims(sub="other")).rsplit(".")[2])
    # An algorithm the issuer does not list is refused even with a good signature.
    with pytest.raises(IdTokenError, match="algorithm"):
        validate_id_token(good, KEYS, issuer=ISSUER, client_id="cli", algorithms=["RS256"],
                          nonce="n-0123456789", now=NOW)  # fmt: skip


def test_the_checks_of_the_former_guard_validator_hold_here_too() -> None:
    """One validator: kid required, typ an ID token's, 8 KiB at most (the async one shares them)."""
    good = sign_jwt(KEY, claims())
    header = json.loads(base64.urlsafe_b64decode(good.split(".")[0] + "=="))
    no_kid = {k: v for k, v in header.items() if k != "kid"}
    with pytest.raises(IdTokenError, match="no kid"):
        check(unsigned(no_kid, claims(), b"x" * 64))
    with pytest.raises(IdTokenError, match="typ"):
        check(sign_jwt(KEY, claims(), typ="at+jwt"))
    with pytest.raises(IdTokenError, match="not a signed JWT"):
        check(sign_jwt(KEY, claims(padding="x" * 9000)))
    with pytest.raises(IdTokenError, match="malformed"):
        check("e30." + good.split(".", 1)[1].replace(".", ".!!", 1))  # {} header, bad base64


def test_encrypted_id_tokens_open_with_the_clients_key() -> None:
    from joserfc.jwk import ECKey

    from tokensmith.jose.jwe import decryption_key, encrypt_jwt, encryption_key

    mine, other = ECKey.generate_key("P-256"), ECKey.generate_key("P-256")
    sealed = encrypt_jwt(sign_jwt(KEY, claims()), encryption_key(mine.as_dict(private=False)))
    keys = [decryption_key(mine.as_dict(private=True))]

    def opened(token: str, decryption: list[Any]) -> dict[str, Any]:
        return validate_id_token(token, KEYS, issuer=ISSUER, client_id="cli", algorithms=["ES256"],
                                 nonce="n-0123456789", now=NOW, decryption_keys=decryption)  # fmt: skip

    assert opened(sealed, keys)["sub"] == "user-1"
    with pytest.raises(IdTokenError, match="no decryption key"):
        opened(sealed, [])
    with pytest.raises(IdTokenError, match="cannot be decrypted"):
        opened(sealed, [decryption_key(other.as_dict(private=True))])
    forged = encrypt_jwt(
        unsigned({"alg": "none"}, claims()), encryption_key(mine.as_dict(private=False))
    )
    with pytest.raises(IdTokenError, match="cannot be decrypted"):
        opened(forged, keys)
