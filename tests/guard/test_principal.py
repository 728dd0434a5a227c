"""guard/principal.py: the fast constructor builds the same frozen Principal as __init__."""

from __future__ import annotations

import dataclasses

import pytest

from tokensmith.guard.principal import Principal, new_principal

FIELDS = ("s", "c", frozenset({"a", "b"}), ("aud",), "iss", 7, "jti", "jwt", {"x": 1})


def test_new_principal_equals_the_dataclass() -> None:
    fast, slow = new_principal(*FIELDS), Principal(*FIELDS)  # type: ignore[arg-type]
    assert fast == slow
    assert repr(fast) == repr(slow)
    assert dataclasses.astuple(fast) == dataclasses.astuple(slow)
    assert fast.claims == {"x": 1}


def test_new_principal_writes_every_field() -> None:
    fast = new_principal(*FIELDS)  # type: ignore[arg-type]
    assert [getattr(fast, f.name) for f in dataclasses.fields(Principal)] == list(FIELDS)


def test_new_principal_is_frozen() -> None:
    fast = new_principal(*FIELDS)  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.subject = "other"  # type: ignore[misc]
