"""What an authorization request needs next (OIDC Core §3.1.2.1, §3.1.2.6), on plain data.

``oauth/decision.py: decide`` against the prompt, max_age, the session's login time, the stored
consent and whether the login happened in this interaction: a table of cases, then properties.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokensmith.accounts.sessions import Session
from tokensmith.oauth.authorization import AuthorizationRequest
from tokensmith.oauth.decision import (
    Decision,
    IssueCode,
    Refuse,
    ShowConsent,
    ShowLogin,
    decide,
    reauthentication_needed,
)
from tokensmith.oauth.grants import Consent

NOW = 1_700_000_000
CLIENT = "client"
USER = "alice"


def request(
    prompt: str | None = None, max_age: int | None = None, scope: str = "openid profile"
) -> AuthorizationRequest:
    return AuthorizationRequest(
        CLIENT, "https://app.example.com/cb", scope, "st", "c" * 43, None, prompt, max_age
    )


def session(age: int = 30, user: str = USER) -> Session:
    auth_time = NOW - age
    return Session(b"s" * 32, user, auth_time, "pwd", auth_time, auth_time + 86_400)


def consent(scope: str = "openid profile", user: str = USER, client: str = CLIENT) -> Consent:
    return Consent(user, client, scope, NOW - 1000)


def kind(decision: Decision) -> str:
    match decision:
        case Refuse(error=error):
            return error
        case ShowLogin():
            return "login"
        case ShowConsent():
            return "consent"
        case IssueCode():
            return "code"


@dataclass(frozen=True)
class Case:
    name: str
    prompt: str | None = None
    max_age: int | None = None
    age: int | None = 30  # seconds since the session's login; None: no session
    granted: str | None = "openid profile"  # the stored consent's scope; None: no consent
    here: bool = False  # the session's login happened in this interaction
    expected: str = "code"


CASES = [
    # -- no session
    Case("no session: log in", age=None, expected="login"),
    Case("no session, prompt=none", prompt="none", age=None, expected="login_required"),
    Case("no session, prompt=consent: log in first", "consent", age=None, expected="login"),
    Case("no session, no consent: log in first", age=None, granted=None, expected="login"),
    # -- a session, and consent
    Case("session and consent: the code"),
    Case("no consent yet", granted=None, expected="consent"),
    Case("consent to fewer scopes", granted="openid", expected="consent"),
    Case("consent to more scopes", granted="email openid profile"),
    Case("consent in another order", granted="profile openid"),
    Case("prompt=consent asks again", "consent", expected="consent"),
    Case("prompt=none, consent given", "none"),
    Case("prompt=none, no consent", "none", granted=None, expected="consent_required"),
    Case("prompt=none, consent short", "none", granted="openid", expected="consent_required"),
    # -- prompt=login
    Case("prompt=login: log in again", "login", expected="login"),
    Case("prompt=login, just logged in here", "login", here=True),
    Case(
        "prompt=login, logged in here, no consent",
        "login",
        granted=None,
        here=True,
        expected="consent",
    ),
    Case("prompt=login consent, logged in here", "login consent", here=True, expected="consent"),
    Case("prompt=login consent, not here", "login consent", expected="login"),
    Case("prompt=none login (invalid) never shows a page", "none login", expected="login_required"),
    # -- max_age: whole seconds, rounded toward "too old"
    Case("max_age=0 asks even in the same second", max_age=0, age=0, expected="login"),
    Case("max_age=0, logged in here", max_age=0, age=0, here=True),
    Case("max_age=0, prompt=none", "none", max_age=0, age=0, expected="login_required"),
    Case("max_age: younger", max_age=60, age=59),
    Case("max_age: exactly that old is too old", max_age=60, age=60, expected="login"),
    Case("max_age: older", max_age=60, age=61, expected="login"),
    Case("max_age: older, logged in here", max_age=60, age=61, here=True),
    Case("max_age: older, prompt=none", "none", max_age=60, age=3600, expected="login_required"),
    Case("max_age: young, prompt=none", "none", max_age=3600, age=60),
    Case("max_age: young, no consent", max_age=3600, age=60, granted=None, expected="consent"),
    Case("max_age=0, login stamped in the future", max_age=0, age=-5, expected="login"),
    Case("max_age, login stamped in the future", max_age=10, age=-5),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_next_step(case: Case) -> None:
    current = session(case.age) if case.age is not None else None
    stored = consent(case.granted) if case.granted is not None else None
    decision = decide(
        request(case.prompt, case.max_age), current, stored, NOW, logged_in_here=case.here
    )
    assert kind(decision) == case.expected
    if isinstance(decision, ShowConsent | IssueCode):
        assert decision.session == current


def test_refusals_name_the_error_and_say_why() -> None:
    assert decide(request("none"), None, None, NOW) == Refuse(
        "login_required", "the user must log in"
    )
    assert decide(request("none"), session(), None, NOW) == Refuse(
        "consent_required", "the user must consent"
    )


@pytest.mark.parametrize(
    "stored",
    [consent(user="mallory"), consent(client="other-client"), consent(scope="")],
    ids=["another user's", "to another client", "to no scope"],
)
def test_only_this_users_consent_to_this_client_counts(stored: Consent) -> None:
    assert kind(decide(request(), session(), stored, NOW)) == "consent"


# -- properties ------------------------------------------------------------------------------

PROMPTS = st.sampled_from([None, "none", "login", "consent", "login consent"])
SCOPES = st.lists(st.sampled_from(["openid", "profile", "email", "api:read"]), unique=True).map(
    " ".join
)
AGES = st.integers(-60, 100_000)  # a login stamped by a node whose clock runs ahead: negative
MAX_AGES = st.none() | st.integers(0, 100_000)


@st.composite
def situations(
    draw: st.DrawFn,
) -> tuple[AuthorizationRequest, Session | None, Consent | None, bool]:
    auth_request = request(draw(PROMPTS), draw(MAX_AGES), draw(SCOPES))
    current = draw(st.none() | AGES.map(session))
    stored = draw(st.none() | SCOPES.map(consent))
    return auth_request, current, stored, draw(st.booleans())


@settings(max_examples=500)
@given(situations())
def test_prompt_none_never_shows_a_page(
    situation: tuple[AuthorizationRequest, Session | None, Consent | None, bool],
) -> None:
    auth_request, current, stored, here = situation
    silent = request("none", auth_request.max_age, auth_request.scope)
    decision = decide(silent, current, stored, NOW, logged_in_here=here and current is not None)
    assert isinstance(decision, Refuse | IssueCode)
    # ...and it answers what the same request with a page allowed would have shown.
    shown = kind(
        decide(
            request(None, silent.max_age, silent.scope),
            current,
            stored,
            NOW,
            logged_in_here=here and current is not None,
        )
    )
    assert kind(decision) == {"login": "login_required", "consent": "consent_required"}.get(
        shown, shown
    )


@settings(max_examples=500)
@given(age=AGES, max_age=st.integers(0, 100_000), prompt=st.sampled_from([None, "consent"]))
def test_max_age_rounds_toward_too_old(age: int, max_age: int, prompt: str | None) -> None:
    auth_request = request(prompt, max_age)
    needed = reauthentication_needed(auth_request, NOW - age, NOW)
    assert needed == (max(age, 0) >= max_age)
    if max_age == 0:
        assert needed  # a login during this request, even in the same second
    decision = decide(auth_request, session(age), consent(), NOW)
    assert isinstance(decision, ShowLogin) == needed
    # A login in this interaction always satisfies max_age.
    assert not reauthentication_needed(auth_request, NOW - age, NOW, logged_in_here=True)


@settings(max_examples=500)
@given(situations())
def test_a_code_only_when_everything_is_in_place(
    situation: tuple[AuthorizationRequest, Session | None, Consent | None, bool],
) -> None:
    auth_request, current, stored, here = situation
    here = here and current is not None
    decision = decide(auth_request, current, stored, NOW, logged_in_here=here)
    if not isinstance(decision, IssueCode):
        return
    assert current is not None and decision.session == current
    assert "consent" not in auth_request.prompts  # consent asked in this interaction, always
    if not here:
        assert "login" not in auth_request.prompts
        max_age = auth_request.max_age
        assert max_age is None or NOW - current.auth_time < max_age
    assert stored is not None or not auth_request.scope
    granted = set(stored.scope.split()) if stored else set()
    assert set(auth_request.scope.split()) <= granted


@settings(max_examples=300)
@given(situations())
def test_a_login_here_never_leads_to_another_login(
    situation: tuple[AuthorizationRequest, Session | None, Consent | None, bool],
) -> None:
    auth_request, current, stored, _ = situation
    if current is None:
        return
    decision = decide(auth_request, current, stored, NOW, logged_in_here=True)
    assert not isinstance(decision, ShowLogin)
    assert decision != Refuse("login_required", "the user must log in")


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://127.0.0.1:50123/callback", "http://[::1]:9/cb", "com.example.app:/cb"],
)
def test_a_remembered_consent_counts_only_where_the_redirect_proves_the_client(
    redirect_uri: str,
) -> None:
    """RFC 8252 §8.6: a loopback port or a private-use scheme is any local app's."""
    native = AuthorizationRequest(CLIENT, redirect_uri, "openid profile", "st", "c" * 43)
    assert kind(decide(native, session(), consent(), NOW)) == "consent"
    silent = AuthorizationRequest(CLIENT, redirect_uri, "openid", "st", "c" * 43, prompt="none")
    assert kind(decide(silent, session(), consent(), NOW)) == "consent_required"
    assert kind(decide(request(), session(), consent(), NOW)) == "code"  # https: remembered
