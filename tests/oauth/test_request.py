"""The client a request claims, read the same however it is spelled (SECURITY 57, 58).

Lockouts count failures under the claimed client id: every spelling that authenticates as a
client must land on that client's name, or a guesser could spread guesses over spellings.
"""

from __future__ import annotations

import base64
from urllib.parse import quote, quote_plus

from hypothesis import given
from hypothesis import strategies as st

from tests.support import token_request
from tokensmith.oauth.client_auth import read_credentials
from tokensmith.oauth.params import Params

IDS = st.text(
    alphabet=st.characters(
        min_codepoint=0x20, max_codepoint=0x2FFF, exclude_categories=("Cs", "Cc")
    ),
    min_size=1,
    max_size=128,
)


def claimed_client(authorization: str | None, params: Params) -> str | None:
    """What the request model parsed, once, as the client the request claims."""
    return token_request(params, authorization=authorization).claimed_client


def basic(user: str, secret: str = "wrong") -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode("ascii")


@given(client_id=IDS)
def test_every_spelling_of_an_id_is_one_name(client_id: str) -> None:
    spellings = [
        claimed_client((basic(quote(client_id, safe=""))), Params([])),
        claimed_client((basic(quote_plus(client_id))), Params([])),
        claimed_client((None), Params([("client_id", client_id)])),
        claimed_client((None), Params([("client_id", client_id), ("client_secret", "x")])),
    ]
    authenticated_as = read_credentials(basic(quote(client_id, safe="")), Params([])).client_id
    assert spellings == [authenticated_as] * 4
    if ":" not in client_id and "%" not in client_id and "+" not in client_id:
        assert claimed_client((basic(client_id)), Params([])) == authenticated_as


@given(noise=st.text(max_size=300))
def test_any_header_is_read_without_an_error_and_capped(noise: str) -> None:
    try:
        header = noise.encode("latin-1").decode("latin-1")
    except UnicodeEncodeError:
        header = noise.encode("utf-8").decode("latin-1")
    claimed = claimed_client((header or None), Params([]))
    assert claimed is None or 0 < len(claimed) <= 128


def test_two_methods_at_once_still_name_the_header_s_client() -> None:
    both = claimed_client((basic("app")), Params([("client_id", "app"), ("client_secret", "s")]))
    assert both == "app"
    assert claimed_client(("Bearer x"), Params([])) is None
