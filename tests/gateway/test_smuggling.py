"""SECURITY.md case 65: no spelling of a stripped header, and no path an upstream could resolve
differently from us, gets through. Properties over spellings, then what a real echo upstream
receives."""

from __future__ import annotations

import socket
from urllib.parse import quote, unquote

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.gateway.conftest import Running
from tests.guard.conftest import Keys
from tests.guard.forge import claims, sign
from tokensmith.core.proxy_headers import upstream_headers
from tokensmith.core.proxy_paths import path_is_forwardable

STRIPPED = [
    "authorization",
    "x-api-key",
    "host",
    "content-length",
    "forwarded",
    "x-real-ip",
    "x-request-id",
    "x-principal",
    "x-user",
    "x-client-id",
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "true-client-ip",
    "x-client-ip",
    "client-ip",
    "cf-connecting-ip",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-internal-user",
    "x-internal-roles",
    "x-tokensmith-principal",
    "connection",
    "transfer-encoding",
    "proxy-authorization",
    "te",
    "upgrade",
]
OURS = {b"authorization", b"x-request-id", b"x-forwarded-for", b"x-forwarded-proto"}
SEPARATORS = st.sampled_from(["-", "_", "."])


@st.composite
def spellings(draw: st.DrawFn) -> str:
    """A stripped header name in random case, each ``-`` written as ``-``, ``_`` or ``.``."""
    name = draw(st.sampled_from(STRIPPED))
    cased = "".join(c.upper() if draw(st.booleans()) else c for c in name)
    return "".join(draw(SEPARATORS) if c == "-" else c for c in cased)


def forwarded(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return upstream_headers(headers, "internal.jwt.here", "rid-12345678", "10.0.0.1", "https")


@settings(max_examples=200, deadline=None)
@given(name=spellings())
def test_no_spelling_of_a_stripped_header_crosses(name: str) -> None:
    sent = [(name.encode(), b"forged"), (b"x-kept", b"yes")]
    out = forwarded(sent)
    assert b"forged" not in [value for _, value in out]
    assert (b"x-kept", b"yes") in out
    assert {n for n, _ in out} <= OURS | {b"x-kept"}


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.",
        min_size=1,
        max_size=30,
    )
)
def test_a_header_crosses_only_if_no_spelling_of_it_is_stripped(name: str) -> None:
    out = forwarded([(name.encode(), b"value-of-caller")])
    crossed = (name.encode(), b"value-of-caller") in out
    spelling = "".join(c if c.isalnum() else "-" for c in name.lower())
    stripped = spelling in STRIPPED or spelling.startswith(
        ("x-forwarded-", "x-internal-", "x-tokensmith-")
    )
    hop = spelling in ("keep-alive", "trailer", "proxy-connection", "proxy-authenticate")
    assert crossed == ("_" not in name and not stripped and not hop), name


def test_connection_named_headers_are_dropped_in_any_spelling() -> None:
    out = forwarded(
        [(b"connection", b"X_Secret, x.other"), (b"x-secret", b"1"), (b"x-other", b"2")]
    )
    assert {n for n, _ in out} == OURS


DANGEROUS_SEGMENTS = [
    "..",
    ".",
    "..;",
    ".;",
    "..;jsessionid=x",
    ".;x=1",
    "%2e%2e",
    "%2E.",
    ".%2e",
    "%2e",
    "%252e%252e",
    "%25",
    "a%2fb",
    "a%2Fb",
    "a%5cb",
    "a\\b",
    "a;b",
    "admin;",
    "%3b",
    "%00",
    "a%0ab",
    "%u002e%u002e",
    "%zz",
    "\uff0e\uff0e",
    "\u2024",
    "\uff0e",
    "",
]
SAFE_SEGMENTS = ["a", "orders", "42", "x-y_z~1", "caf%C3%A9", "...", "a.b", ".hidden", "%41"]


@settings(max_examples=200, deadline=None)
@given(
    before=st.lists(st.sampled_from(SAFE_SEGMENTS), max_size=3),
    bad=st.sampled_from(DANGEROUS_SEGMENTS),
    after=st.lists(st.sampled_from(SAFE_SEGMENTS), max_size=3),
)
def test_paths_with_a_dangerous_segment_are_refused(
    before: list[str], bad: str, after: list[str]
) -> None:
    raw = "/" + "/".join(["orders", *before, bad, *after])
    if bad == "" and not after:
        raw += "/x"  # an empty segment inside, not the allowed trailing slash
    assert not path_is_forwardable(_decode(raw), raw.encode())


@st.composite
def dot_segments(draw: st.DrawFn) -> str:
    """``.`` or ``..``, each dot plain, encoded, double-encoded or fullwidth (encoded), maybe
    with a matrix parameter or a trailing separator that some upstream strips."""
    dots = draw(st.integers(1, 2))
    spelling = st.sampled_from([".", "%2e", "%2E", "%252e", "%252E", "%EF%BC%8E"])
    suffix = draw(st.sampled_from(["", ";", ";x=1", ";jsessionid=abc", "%3b", "%00", "\\"]))
    return "".join(draw(spelling) for _ in range(dots)) + suffix


@settings(max_examples=200, deadline=None)
@given(
    before=st.lists(st.sampled_from(SAFE_SEGMENTS), max_size=2),
    bad=dot_segments(),
    after=st.lists(st.sampled_from(SAFE_SEGMENTS), min_size=1, max_size=2),
)
def test_dot_segments_in_any_spelling_are_refused(
    before: list[str], bad: str, after: list[str]
) -> None:
    raw = "/" + "/".join(["orders", *before, bad, *after])
    assert not path_is_forwardable(_decode(raw), raw.encode())


@settings(max_examples=200, deadline=None)
@given(segments=st.lists(st.sampled_from(SAFE_SEGMENTS), min_size=1, max_size=5))
def test_paths_of_safe_segments_pass(segments: list[str]) -> None:
    raw = "/" + "/".join(segments)
    assert path_is_forwardable(_decode(raw), raw.encode())
    assert path_is_forwardable(_decode(raw + "/"), (raw + "/").encode())


def _decode(raw: str) -> str:
    """The path as uvicorn hands it over: percent-decoded once, as UTF-8."""
    return unquote(raw)


def _raw_request(running: Running, target: str, token: str) -> tuple[int, str]:
    """Sends the target byte for byte (httpx would normalise dot segments); the status and
    the start of the body."""
    host, port = running.base_url.removeprefix("http://").split(":")
    request = (
        f"GET {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Connection: close\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request.encode("utf-8"))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.decode("utf-8", "replace").partition("\r\n\r\n")
    return int(head.split(" ")[1]), body


@pytest.mark.parametrize(
    "target",
    [
        "/orders/..;/admin/x",
        "/orders/.;/admin",
        "/orders/admin;x=1",
        "/orders/..;jsessionid=x/admin",
        "/orders/%2e%2e/admin",
        "/orders/%2E./admin",
        "/orders/%252e%252e/admin",
        "/orders//admin",
        "/orders/a%2fb",
        "/orders/a%5cb",
        "/orders/a\\b",
        "/orders/%u002e",
        "/orders/%EF%BC%8E%EF%BC%8E/admin",
    ],
)
def test_the_upstream_never_sees_an_ambiguous_path(
    running: Running, keys: Keys, target: str
) -> None:
    status, body = _raw_request(running, target, sign(keys.es, claims()))
    assert status == 400, body
    assert "the path is not allowed" in body
    assert '"headers"' not in body  # our answer: the echo upstream was never asked


def test_the_upstream_receives_the_path_we_matched(running: Running, keys: Keys) -> None:
    token = {"authorization": f"Bearer {sign(keys.es, claims())}"}
    for target, seen in [
        ("/orders/a.b/...", "/orders/a.b/..."),
        ("/orders/caf%C3%A9/", "/orders/café/"),
        ("/orders/x-y_z~1", "/orders/x-y_z~1"),
    ]:
        response = httpx.get(running.base_url + target, headers=token, timeout=10)
        assert response.status_code == 200, (target, response.text)
        assert response.json()["path"] == seen


def test_the_upstream_never_sees_underscore_spellings(running: Running, keys: Keys) -> None:
    outside = sign(keys.es, claims())
    forged = {
        "x_internal_user": "admin",
        "X_Forwarded_For": "1.2.3.4",
        "x_forwarded_host": "evil.example",
        "x.internal.roles": "root",
        "x_api_key": "tsk_forged",
        "X_Tokensmith_Principal": "admin",
        "x_real_ip": "1.2.3.4",
        "x_custom": "underscored",
        "x-kept": "yes",
    }
    response = httpx.get(
        running.base_url + "/orders/" + quote("x"),
        headers={"authorization": f"Bearer {outside}", **forged},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    received = response.json()["headers"]
    names = {name for name, _ in received}
    assert not any("_" in name or "." in name for name in names), names
    values = [value for _, value in received]
    for value in ("admin", "root", "evil.example", "tsk_forged", "underscored", "1.2.3.4"):
        assert value not in values
    assert ["x-kept", "yes"] in received
    assert dict(received)["x-forwarded-for"] == "127.0.0.1"


def test_no_header_names_another_path_or_client_address(running: Running, keys: Keys) -> None:
    """The upstream serves what the gateway routed and checked, and learns the client's address
    only from the X-Forwarded-For the gateway wrote: IIS, Symfony and Laravel serve
    X-Original-URL instead of the request line, and client-IP helpers read True-Client-IP and
    its kin before X-Forwarded-For."""
    forged = {
        "X-Original-URL": "/admin/users",
        "X-Rewrite-URL": "/admin/users",
        "X-Original-URI": "/admin/users",
        "True-Client-IP": "1.2.3.4",
        "X-Client-IP": "1.2.3.4",
        "Client-IP": "1.2.3.4",
        "CF-Connecting-IP": "1.2.3.4",
        "X-Cluster-Client-IP": "1.2.3.4",
    }
    response = httpx.get(
        running.base_url + "/orders/x",
        headers={"authorization": f"Bearer {sign(keys.es, claims())}", **forged},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    received = response.json()["headers"]
    assert not {value for _, value in received} & {"/admin/users", "1.2.3.4"}, received
    assert dict(received)["x-forwarded-for"] == "127.0.0.1"
