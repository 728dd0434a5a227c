"""Redirect URIs: registration and matching (SECURITY.md cases 16, 17 and 38).

The properties mutate registered URIs in every component and check, against an oracle written
independently of the parser, that nothing but a loopback IP's port change ever matches, and that
nothing raises except a clean ValueError at registration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokensmith.core.redirect_uris import parse_redirect_uri
from tokensmith.oauth.clients import validate_origin
from tokensmith.oauth.redirects import matches_registered, validate_redirect_uri
from tokensmith.oidc.logout import logout_redirect

PROPERTY = settings(max_examples=300, deadline=None)


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback",
        "https://app.example.com/cb?tenant=1",
        "https://app.example.com?tenant=1",
        "https://app.example.com",
        "https://app.example.com:8443/cb",
        "https://[2001:db8::1]/cb",
        "https://app.example.com/.well-known/cb",
        "https://app.example.com/a%20b",
        "http://127.0.0.1/callback",
        "http://127.0.0.1:8080/callback",
        "http://[::1]:9000/cb",
        "http://localhost:3000/cb",
        "com.example.app:/oauth2redirect",
    ],
)
def test_acceptable_redirect_uris(uri: str) -> None:
    assert validate_redirect_uri(uri) == uri
    assert str(parse_redirect_uri(uri)) == uri


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "https://app.example.com/cb#frag",
        "https://app.example.com/cb#",
        "https://app.example.com/cb?",
        "https://*.example.com/cb",
        "https://app.example.com/*",
        "http://app.example.com/cb",
        "http://127.0.0.1.evil.com/cb",
        "http://127.0.0.2/cb",
        "http://[::ffff:127.0.0.1]/cb",
        "javascript:alert(1)",
        "data:text/html,hi",
        "HTTPS://app.example.com/cb",
        "Https://app.example.com/cb",
        "https://user:pw@app.example.com/cb",
        "https://app.example.com@evil.com/cb",
        "http://127.0.0.1:1234@attacker.example/cb",
        "http://127.0.0.1@attacker.example/cb",
        "https://app.example.com\\@evil.com/cb",
        "https://app.example.com/a/../b",
        "https://app.example.com/a/./b",
        "https://app.example.com/a/..",
        "https://app.example.com/a/%2e%2e/b",
        "https://app.example.com/a/%2E/b",
        "https://app.example.com/a%zz",
        "https://app.example.com/a%",
        "https://app.example.com/cb\r\nX: y",
        "https://app.example.com/c b",
        " https://app.example.com/cb",
        "https://app.example.com/cb ",
        "https://app.example.com/caf\u00e9",
        "https://\u0430pp.example.com/cb",
        "https://app.example.com\uff0fcb",
        "/relative/path",
        "//app.example.com/cb",
        "https:app.example.com/cb",
        "https:///cb",
        "myapp:/cb",
        "com.example.app:",
        "http://[::1/cb",
        "http://[::1",
        "http://[127.0.0.1]/cb",
        "http://[::1]]/cb",
        "http://[[::1]/cb",
        "http://[::1%25eth0]/cb",
        "http://[::1]x/cb",
        "https://app.example.com/cb[",
        "http://127.0.0.1:/cb",
        "http://127.0.0.1:0/cb",
        "http://127.0.0.1:65536/cb",
        "http://127.0.0.1:080/cb",
        "http://127.0.0.1:+80/cb",
        "http://127.0.0.1:8a/cb",
        "http://127.0.0.1:80:80/cb",
        "https://app..example.com/cb",
        "https://-app.example.com/cb",
        "https://app_1.example.com/cb",
        "https://app.example.com:/cb",
        "https://" + "a" * 2000 + ".com/",
    ],
)
def test_refused_redirect_uris(uri: str) -> None:
    with pytest.raises(ValueError) as refused:
        validate_redirect_uri(uri)
    assert type(refused.value) is ValueError  # ours, with a reason; not one of urllib's
    assert "Invalid IPv6" not in str(refused.value)


@pytest.mark.parametrize(
    "origin", ["http://[::1", "http://[127.0.0.1]", "https://a.example/", "https://a.example/x"]
)
def test_malformed_origins_are_refused_cleanly(origin: str) -> None:
    with pytest.raises(ValueError, match="is not an origin"):
        validate_origin(origin)


# -- matching: examples ---------------------------------------------------------------------------

LOOPBACK = ("http://127.0.0.1/callback",)


@pytest.mark.parametrize(
    "presented",
    [
        "http://127.0.0.1:1234@attacker.example/callback",
        "http://127.0.0.1:1234@attacker.example/cb",
        "HTTP://127.0.0.1:5/callback",
        "Http://127.0.0.1/callback",
        " http://127.0.0.1/callback",
        "http://127.0.0.1/callback ",
        "http://127.0.0.1/callback?",
        "http://127.0.0.1/callback#",
        "http://127.0.0.1:5/callback?",
        "http://127.0.0.1:5/callback#",
        "http://[::1/callback",
        "http://[127.0.0.1]/callback",
        "http://127.0.0.1:0/callback",
        "http://127.0.0.1:080/callback",
        "http://127.0.0.1:65536/callback",
        "http://127.0.0.1:/callback",
        "http://localhost/callback",
        "http://localhost:5/callback",
        "http://[::1]/callback",
        "https://127.0.0.1/callback",
        "http://127.0.0.1:5\\@attacker.example/callback",
        "http://127.0.0.1:5/callback/../x",
    ],
)
def test_loopback_lookalikes_do_not_match(presented: str) -> None:
    assert not matches_registered(presented, LOOPBACK)


@pytest.mark.parametrize(
    ("registered", "presented"),
    [
        ("http://127.0.0.1/callback", "http://127.0.0.1:61234/callback"),
        ("http://127.0.0.1:8080/callback", "http://127.0.0.1/callback"),
        ("http://127.0.0.1:8080/callback", "http://127.0.0.1:65535/callback"),
        ("http://[::1]/cb?x=1", "http://[::1]:1/cb?x=1"),
    ],
)
def test_loopback_ip_port_may_change(registered: str, presented: str) -> None:
    assert matches_registered(presented, (registered,))


def test_localhost_matches_only_byte_for_byte() -> None:
    # RFC 8252 §8.3: localhost is resolved, so it gets no port leeway; existing ones still work.
    assert matches_registered("http://localhost:3000/cb", ("http://localhost:3000/cb",))
    assert not matches_registered("http://localhost:3001/cb", ("http://localhost:3000/cb",))


def test_a_registration_refused_today_no_longer_matches() -> None:
    stale = "http://127.0.0.1/cb?"  # stored before registration refused an empty query
    assert not matches_registered(stale, (stale,))
    assert logout_redirect(stale, (stale,), None) is None


# -- matching: properties ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Registered:
    uri: str
    loopback_host: str | None  # written out by hand, not taken from the parser
    rest: str


REGISTERED = [
    Registered("https://app.example.com/callback", None, ""),
    Registered("https://app.example.com/cb?tenant=1", None, ""),
    Registered("https://app.example.com:8443/cb", None, ""),
    Registered("http://127.0.0.1/callback", "127.0.0.1", "/callback"),
    Registered("http://127.0.0.1:8080/callback", "127.0.0.1", "/callback"),
    Registered("http://[::1]:9000/cb", "[::1]", "/cb"),
    Registered("http://[::1]/cb?a=b", "[::1]", "/cb?a=b"),
    Registered("http://localhost:3000/cb", None, ""),
    Registered("com.example.app:/oauth2redirect", None, ""),
]

INSERTS = [
    " ", "\t", "\n", "\r", "\x00", "\x0b", "\x7f", "\u00a0", "\u2028", "\ufeff", "\uff0f",
    "@", "\\", "[", "]", "%", "%2e", "%2E", "%2f", "%5c", "%40", "%zz", "?", "#", "&", ":",
    "/", "//", "/./", "/../", ".", "..", "*", "x@", "127.0.0.1:1@", "attacker.example",
    ":1234@attacker.example", "0", ":", "[::1]", "]@x", "%00", "%20",
]  # fmt: skip
HOSTS = [
    "attacker.example", "127.0.0.1", "[::1]", "localhost", "127.0.0.2", "[::ffff:127.0.0.1]",
    "[0:0:0:0:0:0:0:1]", "127.0.0.1.attacker.example", "APP.example.com", "app.example.com.",
    "2130706433", "0x7f.1", "127.1", "[127.0.0.1]", "[::1", "::1]", "LOCALHOST", "",
]  # fmt: skip
PORTS = ["", "0", "1", "80", "080", "65535", "65536", "99999", " 1", "+1", "1a", "-1", "1:1"]


def may_match(registered: Registered, presented: str) -> bool:
    """May ``presented`` match? Only itself, or a loopback IP literal with any valid port."""
    if presented == registered.uri:
        return True
    if registered.loopback_host is None:
        return False
    port = r"(?::(?P<port>[1-9][0-9]{0,4}))?"
    pattern = "http://" + re.escape(registered.loopback_host) + port + re.escape(registered.rest)
    found = re.fullmatch(pattern, presented)
    return found is not None and int(found["port"] or 80) <= 65535


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Registered, str]:
    registered = draw(st.sampled_from(REGISTERED))
    uri = registered.uri
    for _ in range(draw(st.integers(1, 3))):
        uri = _one_mutation(draw, uri)
    return registered, uri


def _one_mutation(draw: st.DrawFn, uri: str) -> str:
    """One change to one component: scheme, authority, port, path, query, fragment or a byte."""
    if not uri:
        return draw(st.sampled_from(INSERTS))
    i = draw(st.integers(0, len(uri) - 1))
    authority = re.match(r"[a-z.]+://([^/?]*)", uri)
    start, end = authority.span(1) if authority else (i, i)
    bare_host = re.sub(r":[0-9]+$", "", uri[start:end])
    kind = draw(st.integers(0, 10))
    if kind == 0:
        return uri[:i] + draw(st.sampled_from(INSERTS)) + uri[i:]
    if kind == 1:
        return uri[:i] + draw(st.characters(codec="utf-8")) + uri[i:]
    if kind == 2:
        return uri[:i] + uri[i + 1 :]
    if kind == 3:
        return uri[:i] + uri[i].swapcase() + uri[i + 1 :]
    if kind == 4:
        return uri[:i] + f"%{ord(uri[i]):02X}" + uri[i + 1 :]
    if kind == 5:
        return uri.split(":", 1)[0].upper() + uri[len(uri.split(":", 1)[0]) :]
    if kind == 6:
        return uri[:start] + draw(st.sampled_from(HOSTS)) + uri[end:]
    if kind in (7, 8):  # the port: the one change that may match, on a loopback IP
        port = draw(st.sampled_from(PORTS) | st.integers(0, 99999).map(str))
        return uri[:start] + bare_host + (":" + port if port else "") + uri[end:]
    if kind == 9:
        return uri + draw(st.sampled_from(["/", "?", "#", "?x=1", "&x=1", "#f", "@a.example", "/..", "/.", "%2e%2e"]))  # fmt: skip
    return uri.replace("/", "\\", 1) if draw(st.booleans()) else uri.replace("http", "https", 1)


@PROPERTY
@given(mutated())
def test_no_mutation_but_a_loopback_port_change_matches(case: tuple[Registered, str]) -> None:
    registered, presented = case
    assert matches_registered(presented, (registered.uri,)) == may_match(registered, presented)


@PROPERTY
@given(mutated())
def test_logout_uris_match_byte_for_byte_only(case: tuple[Registered, str]) -> None:
    registered, presented = case
    target = logout_redirect(presented, (registered.uri,), None)
    assert target == (presented if presented == registered.uri else None)


@PROPERTY
@given(mutated())
def test_registration_refuses_only_with_a_value_error(case: tuple[Registered, str]) -> None:
    _, uri = case
    try:
        parsed = parse_redirect_uri(uri)
    except ValueError as error:
        reason = str(error)
    else:
        reason = ""
        assert str(parsed) == uri  # nothing was normalised away
    assert reason or validate_redirect_uri(uri) == uri


@PROPERTY
@given(st.one_of(st.text(max_size=60), mutated().map(lambda case: case[1])))
def test_our_parser_and_the_standard_one_agree_on_the_host(uri: str) -> None:
    """A parser differential is how open redirects slip through: where we see a host and port,
    urllib (and so a browser following RFC 3986) sees the same."""
    assert matches_registered(uri, (uri, *(r.uri for r in REGISTERED))) in (True, False)
    try:
        parsed = parse_redirect_uri(uri)
    except ValueError:
        return
    if parsed.host is None:
        return
    parts = urlsplit(uri)
    assert parts.username is None and parts.password is None
    hostname = parts.hostname or ""
    assert (f"[{hostname}]" if ":" in hostname else hostname) == parsed.host.lower()
    assert parts.port == (int(parsed.port) if parsed.port else None)
