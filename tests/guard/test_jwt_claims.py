"""guard/jwt.py's claim checks on their fast paths: every NumericDate spelling decides as the
careful path does, and the per-validator memory of scope strings stays bounded."""

from __future__ import annotations

from typing import Any

import pytest

from tests.guard.forge import AUDIENCE, DROP, ISSUER, claims, new_key, sign
from tokensmith.core.clock import FrozenClock
from tokensmith.guard import InvalidToken, JwtValidator, StaticKeys, TokenExpired, pin
from tokensmith.guard import jwt as guard_jwt
from tokensmith.jose.keys import verification_key_from_jwk

NOW = 2_000_000_000
KEY = new_key()


def validator() -> JwtValidator:
    keys = StaticKeys([pin(verification_key_from_jwk(KEY.public_jwk()))])
    return JwtValidator(
        keys, issuer=ISSUER, audiences=[AUDIENCE], leeway=30, clock=FrozenClock(start=NOW)
    )


@pytest.mark.parametrize("name", ["nbf", "iat"])
@pytest.mark.parametrize(
    ("value", "accepted"),
    [(DROP, True), (NOW, True), (NOW + 30, True), (NOW + 31, False), (float(NOW), True),
     (NOW + 30.5, True), (NOW + 31.0, False), (None, False), (True, False), (False, False),
     ("1", False), ([NOW], False), ({}, False), (1e400, False), (-(2**70), True),
     (2**70, False)],
)  # fmt: skip
def test_not_before_and_issued_at(name: str, value: Any, accepted: bool) -> None:
    overrides: dict[str, Any] = {"exp": NOW + 300, name: value}
    if name == "nbf":
        overrides["iat"] = NOW
    token = sign(KEY, claims(**overrides))
    if value is DROP and name == "iat":
        accepted = False  # a required claim (RFC 9068 §2.2)
    if accepted:
        assert validator().validate(token).subject == "user-1"
    else:
        with pytest.raises(InvalidToken, match=name):
            validator().validate(token)


@pytest.mark.parametrize(
    ("value", "outcome"),
    [(NOW + 1, "ok"), (float(NOW + 1), "ok"), (NOW - 29, "ok"), (NOW - 30, "expired"),
     (None, "invalid"), (True, "invalid"), ("9999999999", "invalid"), (1e400, "invalid"),
     (2**70, "ok")],
)  # fmt: skip
def test_expiry(value: Any, outcome: str) -> None:
    token = sign(KEY, claims(exp=value, iat=NOW))
    if outcome == "ok":
        assert validator().validate(token).subject == "user-1"
    else:
        with pytest.raises(TokenExpired if outcome == "expired" else InvalidToken):
            validator().validate(token)


def test_scope_sets_are_remembered_within_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard_jwt, "_MAX_SCOPE_SETS", 4)
    checker = validator()
    for n in range(20):
        principal = checker.validate(sign(KEY, claims(scope=f"a b s{n}", exp=NOW + 60, iat=NOW)))
        assert principal.scopes == {"a", "b", f"s{n}"}
        assert len(checker._scope_sets) <= 4
    checker.forget()
    assert checker._scope_sets == {}
