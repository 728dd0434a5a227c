"""The sealed interaction and when a login is demanded (SECURITY.md case 56), in-process."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokensmith.accounts.sessions import Session
from tokensmith.core.sealing import MasterKey
from tokensmith.oauth.authorization import AuthorizationRequest
from tokensmith.oauth.interaction import (
    Interaction,
    Step,
    login_needed,
    open_interaction,
    seal_interaction,
)

MASTER = MasterKey(b"k" * 32)
NOW = 1_700_000_000
STEPS: tuple[Step, Step] = ("login", "consent")


def request(prompt: str | None = None, max_age: int | None = None) -> AuthorizationRequest:
    return AuthorizationRequest(
        "client", "https://app.example.com/cb", "openid", "st", "c" * 43, None, prompt, max_age
    )


def session(auth_time: int, ref: bytes = b"s") -> Session:
    return Session(ref * 32, "user", auth_time, "pwd", auth_time, auth_time + 3600)


@pytest.mark.parametrize("sealed_for", STEPS)
@pytest.mark.parametrize("opened_at", STEPS)
def test_an_interaction_opens_only_for_its_step_and_browser(
    sealed_for: Step, opened_at: Step
) -> None:
    interaction = Interaction(request(), NOW + 600, "ref", NOW)
    sealed = seal_interaction(MASTER, interaction, sealed_for, "browser-a")
    same = open_interaction(MASTER, sealed, NOW, opened_at, "browser-a")
    assert same == (interaction if sealed_for == opened_at else None)
    assert open_interaction(MASTER, sealed, NOW, sealed_for, "browser-b") is None
    assert open_interaction(MASTER, sealed, NOW + 600, sealed_for, "browser-a") is None


@pytest.mark.parametrize("junk", [None, "", "AAAA", "x" * 20000, "not base64!"])
def test_junk_does_not_open(junk: str | None) -> None:
    assert open_interaction(MASTER, junk, NOW, "consent", "browser") is None


def test_a_login_in_this_interaction_satisfies_prompt_login_and_max_age_zero() -> None:
    fresh = session(NOW, b"n")
    for demanded in (request("login"), request(max_age=0), request("login consent", 0)):
        before = Interaction(demanded, NOW + 600)
        assert login_needed(before, fresh, NOW)
        assert not login_needed(before.logged_in(fresh, NOW), fresh, NOW)
        # ...but only for the session that login created.
        assert login_needed(before.logged_in(fresh, NOW), session(NOW, b"o"), NOW)


def test_forms_carry_only_what_belongs_to_their_step() -> None:
    fresh, other = session(NOW, b"n"), session(NOW, b"o")
    done = Interaction(request("login"), NOW + 600).logged_in(fresh, NOW)
    assert done.for_login().logged_in_at is None
    assert done.for_login().session_ref is None
    assert done.for_consent(fresh) == done
    moved = done.for_consent(other)
    assert moved.session_ref == other.session_ref
    assert moved.logged_in_at is None
    assert login_needed(moved, other, NOW)


@settings(max_examples=300, deadline=None)
@given(
    age=st.integers(0, 10_000),
    max_age=st.none() | st.integers(0, 10_000),
    prompt=st.sampled_from([None, "login", "consent", "none", "login consent"]),
)
def test_login_is_demanded_exactly_when_the_spec_says(
    age: int, max_age: int | None, prompt: str | None
) -> None:
    interaction = Interaction(request(prompt, max_age), NOW + 600)
    needed = login_needed(interaction, session(NOW - age), NOW)
    too_old = max_age is not None and age >= max_age  # whole seconds: round towards "too old"
    assert needed == ("login" in (prompt or "").split() or too_old)
    if max_age == 0:
        assert needed  # max_age=0 means a login during this request, even in the same second
