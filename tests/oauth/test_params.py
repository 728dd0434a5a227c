"""Every control character is refused in a parameter's name or value, and nothing else is."""

from __future__ import annotations

import base64
from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokensmith.errors import InvalidRequest
from tokensmith.oauth.client_auth import read_credentials
from tokensmith.oauth.params import Params


def is_control(character: str) -> bool:
    return ord(character) < 0x20 or ord(character) == 0x7F


texts = st.text(alphabet=st.characters(max_codepoint=0x2FF), max_size=40)


@given(name=texts.filter(bool), value=texts)
def test_a_parameter_is_refused_exactly_when_it_holds_a_control_character(
    name: str, value: str
) -> None:
    if any(is_control(c) for c in name + value):
        with pytest.raises(InvalidRequest, match="control character"):
            Params([(name, value)])
    else:
        assert Params([(name, value)]).get(name) == (value or None)


@given(client_id=texts.filter(lambda t: bool(t) and ":" not in t), secret=texts)
def test_basic_credentials_are_refused_exactly_when_they_hold_a_c0_control(
    client_id: str, secret: str
) -> None:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    header = "Basic " + base64.b64encode(raw).decode()
    if any(ord(c) < 0x20 for c in client_id + secret):
        with pytest.raises(InvalidRequest, match="control character"):
            read_credentials(header, Params())
    else:
        credentials = read_credentials(header, Params())
        assert (credentials.client_id, credentials.secret) == (client_id, secret)
