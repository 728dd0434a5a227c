"""The one WWW-Authenticate renderer: whatever goes in, the header stays valid RFC 9110 syntax."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokensmith.core.challenges import (
    MAX_DESCRIPTION,
    MAX_VALUE,
    join_challenges,
    render_challenge,
)

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_SCHEME = re.compile(rf"({_TOKEN})(?=[ ,]|$)")
# RFC 9110 §5.6.4: qdtext and quoted-pair (obs-text left out: we never send it).
_PARAM = re.compile(rf'({_TOKEN})="((?:[\t !#-\[\]-~]|\\[\t -~])*)"')


def parse(header: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """A strict reader of ``#challenge`` (RFC 9110 §11.6.1) with quoted-string values only:
    anything it cannot account for, to the last character, fails the test."""
    challenges: list[tuple[str, list[tuple[str, str]]]] = []
    pos = 0
    while True:
        scheme = _SCHEME.match(header, pos)
        assert scheme is not None, f"no scheme at {pos}: {header!r}"
        pos = scheme.end()
        params: list[tuple[str, str]] = []
        if header.startswith(" ", pos):
            pos += 1
            while (param := _PARAM.match(header, pos)) is not None:
                params.append((param[1], re.sub(r"\\(.)", r"\1", param[2])))
                pos = param.end()
                if not (header.startswith(", ", pos) and _PARAM.match(header, pos + 2)):
                    break
                pos += 2
            assert params, f"a space and no parameter after the scheme: {header!r}"
        challenges.append((scheme[1], params))
        if pos == len(header):
            return challenges
        assert header.startswith(", ", pos), f"stray text at {pos}: {header!r}"
        pos += 2


def test_the_headers_tokensmith_sends() -> None:
    assert render_challenge("Bearer", realm="tokensmith") == 'Bearer realm="tokensmith"'
    assert render_challenge(
        "Bearer",
        realm="tokensmith",
        error="insufficient_scope",
        error_description="the openid scope is required",
        scope="openid",
    ) == (
        'Bearer realm="tokensmith", error="insufficient_scope", '
        'error_description="the openid scope is required", scope="openid"'
    )
    assert (
        render_challenge("Basic", realm="tokensmith", charset="UTF-8")
        == 'Basic realm="tokensmith", charset="UTF-8"'
    )
    assert (
        render_challenge("Bearer", realm="metrics", error="invalid_token")
        == 'Bearer realm="metrics", error="invalid_token"'
    )
    assert render_challenge("Negotiate") == "Negotiate"


def test_rfc_6750_values_lose_quotes_and_backslashes_others_escape_them() -> None:
    header = render_challenge(
        "Bearer", realm='a "b" \\c', error_description='the "aud" \\ is wrong'
    )
    assert header == ('Bearer realm="a \\"b\\" \\\\c", error_description="the \'aud\'  is wrong"')
    assert parse(header) == [
        ("Bearer", [("realm", 'a "b" \\c'), ("error_description", "the 'aud'  is wrong")])
    ]


def test_controls_and_non_ascii_never_reach_the_header() -> None:
    header = render_challenge(
        "Bearer", realm="x\r\nSet-Cookie: a=b", error_description="caf\u00e9\x00\x7f\u2028 \t!"
    )
    assert header == 'Bearer realm="x  Set-Cookie: a=b", error_description="caf??  !"'
    header.encode("ascii")


def test_values_are_capped() -> None:
    header = render_challenge(
        "Bearer", realm="r" * 5000, error_description="d" * 5000, scope="s " * 5000
    )
    values = dict(parse(header)[0][1])
    assert len(values["error_description"]) == MAX_DESCRIPTION
    assert values["error_description"].endswith("...")
    assert len(values["realm"]) == len(values["scope"]) == MAX_VALUE
    # A cap never cuts a quoted-pair in two.
    escaped = render_challenge("Bearer", realm='"' * 5000)
    assert parse(escaped) == [("Bearer", [("realm", '"' * (MAX_VALUE - 3) + "...")])]


def test_several_schemes_are_separate_challenges() -> None:
    header = join_challenges(
        render_challenge("Bearer", realm="api", error="invalid_token", error_description="a, b"),
        render_challenge("DPoP", realm="api", algs="ES256 PS256"),
        render_challenge("Basic"),
    )
    assert parse(header) == [
        ("Bearer", [("realm", "api"), ("error", "invalid_token"), ("error_description", "a, b")]),
        ("DPoP", [("realm", "api"), ("algs", "ES256 PS256")]),
        ("Basic", []),
    ]


@pytest.mark.parametrize(
    ("scheme", "params"),
    [("Bea rer", {}), ("", {}), ("Bearer\r\n", {}), ("Bearer", {"bad name": "x"})],
)
def test_names_are_tokens(scheme: str, params: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        render_challenge(scheme, **params)


_ANY = st.none() | st.text(max_size=1200)
_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True).filter(
    lambda n: n not in {"realm", "error", "error_description", "scope", "resource_metadata"}
)


@given(
    realm=_ANY,
    error=_ANY,
    description=_ANY,
    scope=_ANY,
    metadata=_ANY,
    extra=st.dictionaries(_NAMES, _ANY, max_size=3),
    scheme=st.sampled_from(["Bearer", "DPoP", "ApiKey", "Basic"]),
)
def test_no_value_breaks_the_header(
    realm: str | None,
    error: str | None,
    description: str | None,
    scope: str | None,
    metadata: str | None,
    extra: dict[str, str | None],
    scheme: str,
) -> None:
    header = render_challenge(
        scheme,
        realm=realm,
        error=error,
        error_description=description,
        scope=scope,
        resource_metadata=metadata,
        **extra,
    )
    assert "\r" not in header and "\n" not in header
    assert all(" " <= c <= "~" for c in header), header  # printable ASCII: Latin-1 safe
    given_params = {
        "realm": realm,
        "error": error,
        "error_description": description,
        "scope": scope,
        "resource_metadata": metadata,
        **extra,
    }
    [(sent_scheme, params)] = parse(header)
    assert sent_scheme == scheme
    assert [name for name, _ in params] == [n for n, v in given_params.items() if v is not None]
    for name, value in params:
        if name in ("error", "error_description", "scope"):
            assert '"' not in value and "\\" not in value  # RFC 6750 §3
        cap = MAX_DESCRIPTION if name == "error_description" else MAX_VALUE
        assert len(value) <= cap
        original = given_params[name]
        assert original is not None
        if all(" " <= c <= "~" for c in original) and len(original) <= cap:
            expected = original
            if name in ("error", "error_description", "scope"):
                expected = original.replace("\\", "").replace('"', "'")
            assert value == expected  # printable values arrive as they were


@given(st.lists(st.text(max_size=200), min_size=1, max_size=4))
def test_joined_challenges_still_parse_one_by_one(descriptions: list[str]) -> None:
    header = join_challenges(
        *(
            render_challenge("Bearer", realm=d, error="invalid_token", error_description=d)
            for d in descriptions
        )
    )
    parsed = parse(header)
    assert [scheme for scheme, _ in parsed] == ["Bearer"] * len(descriptions)
    assert all(
        [n for n, _ in params] == ["realm", "error", "error_description"] for _, params in parsed
    )


@pytest.mark.parametrize(
    "broken",
    [
        'Bearer realm="a"b"',
        'Bearer realm="a", error="x\r\n"',
        'Bearer realm="a" error="b"',
        'Bearer realm="a\\"',
        "Bearer realm=a",
    ],
)
def test_the_reader_above_is_strict(broken: str) -> None:
    with pytest.raises(AssertionError):
        parse(broken)
