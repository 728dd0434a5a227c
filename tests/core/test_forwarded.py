"""Forwarding headers: read only from declared proxies, right to left (SECURITY.md case 59)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokensmith.core.forwarded import (
    Source,
    TrustedProxies,
    apply_source,
    parse_networks,
    resolve_source,
)

LOCAL = TrustedProxies(parse_networks(["127.0.0.1", "10.0.0.0/8"]))
FORWARDED = TrustedProxies(LOCAL.networks, "forwarded")


def xff(value: str, proto: str | None = None) -> list[tuple[bytes, bytes]]:
    headers = [(b"x-forwarded-for", value.encode())]
    if proto is not None:
        headers.append((b"x-forwarded-proto", proto.encode()))
    return headers


def test_nothing_is_read_without_declared_proxies() -> None:
    none = TrustedProxies()
    assert resolve_source("127.0.0.1", "http", xff("203.0.113.9", "https"), none) == Source(
        "127.0.0.1", "http"
    )


def test_an_undeclared_peer_is_the_client_whatever_it_says() -> None:
    headers = xff("10.0.0.1, 203.0.113.9", "https")
    assert resolve_source("198.51.100.4", "http", headers, LOCAL) == Source("198.51.100.4", "http")


def test_a_declared_proxy_is_believed() -> None:
    headers = xff("203.0.113.9", "https")
    assert resolve_source("127.0.0.1", "http", headers, LOCAL) == Source("203.0.113.9", "https")


def test_a_forged_left_most_entry_yields_the_right_most_untrusted_hop() -> None:
    headers = xff("1.1.1.1, 203.0.113.9, 10.1.2.3")
    assert resolve_source("127.0.0.1", "http", headers, LOCAL).host == "203.0.113.9"


def test_a_chain_of_trusted_hops_ends_at_the_left_most() -> None:
    assert resolve_source("127.0.0.1", "http", xff("10.0.0.7, 10.0.0.8"), LOCAL).host == "10.0.0.7"


def test_several_header_lines_are_one_list() -> None:
    headers = [(b"x-forwarded-for", b"1.1.1.1"), (b"x-forwarded-for", b"203.0.113.9")]
    assert resolve_source("127.0.0.1", "http", headers, LOCAL).host == "203.0.113.9"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("203.0.113.9:4711", "203.0.113.9"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
    ],
)
def test_address_spellings(value: str, expected: str) -> None:
    assert resolve_source("127.0.0.1", "http", xff(value), LOCAL).host == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "unknown",
        "not-an-ip",
        "999.1.1.1",
        "1.1.1.1/24",
        "[::1",
        "_hidden",
        ",,,",
        "203.0.113.9\x00",
        "\xff\xfe",
        "1.1.1.1:80:90",
        "[::1]x",
        "203.0.113.9 , ",  # a trusted hop that wrote an empty entry: stop at it
    ],
)
def test_malformed_entries_stop_at_the_last_known_hop(value: str) -> None:
    source = resolve_source("127.0.0.1", "http", xff(value), LOCAL)
    assert source.host == "127.0.0.1"


def test_malformed_entries_behind_a_good_one_are_never_read() -> None:
    assert resolve_source("127.0.0.1", "http", xff("garbage, 203.0.113.9"), LOCAL).host == (
        "203.0.113.9"
    )


def test_an_oversized_header_is_read_from_its_right_end() -> None:
    """The client pads what it sends past the cap; the proxy appends the client's address. The
    padding must not make the proxy (its address range, its lockout) the client."""
    padding = "1.2.3.4, " * 1000
    for trusted, headers in (
        (LOCAL, xff(padding + "203.0.113.9")),
        (LOCAL, [*xff(padding), *xff("203.0.113.9")]),  # the proxy added a line of its own
        (
            FORWARDED,
            [(b"forwarded", (padding.replace("1.2", "for=1.2") + "for=203.0.113.9").encode())],
        ),
    ):
        assert resolve_source("127.0.0.1", "http", headers, trusted).host == "203.0.113.9"
    # Only trusted hops on the right: the walk stops where the cut falls, at a trusted hop.
    headers = xff(", ".join(["10.0.0.1"] * 1000))
    assert resolve_source("127.0.0.1", "http", headers, LOCAL).host == "10.0.0.1"
    # The entry the cut falls in is never read: cut after "20", "203.0.113.99" is "3.0.113.99".
    headers = xff("203.0.113.99" + " " * 4076 + ", 10.0.0.1")
    assert resolve_source("127.0.0.1", "http", headers, LOCAL).host == "10.0.0.1"


def test_the_scheme_is_http_or_https_only() -> None:
    for proto in ("javascript", "HTTPS ", "ftp", ""):
        source = resolve_source("127.0.0.1", "http", xff("203.0.113.9", proto), LOCAL)
        assert source.scheme == ("https" if proto == "HTTPS " else "http")
    assert resolve_source("127.0.0.1", "http", xff("1.1.1.1", "http, https"), LOCAL).scheme == (
        "https"
    )


def test_forwarded_header() -> None:
    headers = [(b"forwarded", b'for=1.1.1.1;proto=http, for="[2001:db8::5]:80";proto=https')]
    assert resolve_source("127.0.0.1", "http", headers, FORWARDED) == Source("2001:db8::5", "https")
    assert resolve_source("127.0.0.1", "http", [(b"forwarded", b"for=unknown")], FORWARDED) == (
        Source("127.0.0.1", "http")
    )
    # The peer itself says only the scheme: it is a declared proxy, so that is believed.
    assert resolve_source("127.0.0.1", "http", [(b"forwarded", b"proto=https")], FORWARDED) == (
        Source("127.0.0.1", "https")
    )


def test_only_the_header_the_proxies_write_is_read() -> None:
    # A proxy that writes X-Forwarded-For passes a client's Forwarded header on untouched.
    headers = [*xff("203.0.113.9"), (b"forwarded", b"for=10.9.9.9")]
    assert resolve_source("127.0.0.1", "http", headers, LOCAL).host == "203.0.113.9"
    assert resolve_source("127.0.0.1", "http", xff("203.0.113.9"), FORWARDED).host == "127.0.0.1"


def test_apply_source_rewrites_the_scope() -> None:
    headers = xff("203.0.113.9", "https")
    scope = {"type": "http", "client": ("127.0.0.1", 5000), "scheme": "http", "headers": headers}
    apply_source(scope, LOCAL)
    assert scope["client"] == ("203.0.113.9", 0) and scope["scheme"] == "https"


def test_bad_networks_are_named() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300'"):
        parse_networks(["10.0.0.0/8", "10.0.0.300"])


@given(st.binary(max_size=300), st.binary(max_size=40))
def test_any_bytes_give_the_peer_or_an_address_they_carry(value: bytes, proto: bytes) -> None:
    headers = [(b"x-forwarded-for", value), (b"x-forwarded-proto", proto), (b"forwarded", value)]
    for trusted in (LOCAL, FORWARDED):
        source = resolve_source("127.0.0.1", "http", headers, trusted)
        assert source.scheme in ("http", "https")
        assert source.host == "127.0.0.1" or source.host is not None
