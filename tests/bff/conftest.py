"""A real Tokensmith, a guarded upstream API that records what reaches it, and the BFF between
them and a browser, all on loopback over real HTTP. ``SpaUser`` is the browser: it follows the
BFF's login through Tokensmith's own login and consent pages and keeps the BFF's cookies."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from redis.asyncio import Redis

from tests.guard.servers import asgi_server
from tests.oauth.browser import Browser
from tests.oauth.conftest import Registered, Registrar, alice, port, register, server, settings
from tests.support import ServerThread, listening_socket
from tokensmith.bff import Bff, build_bff, parse_config
from tokensmith.bff.cookies import LOGIN_COOKIE, SESSION_COOKIE
from tokensmith.bff.sessions import SessionRecord, Sessions
from tokensmith.bff.stores import RedisStore
from tokensmith.core.clock import FrozenClock
from tokensmith.guard import Guard
from tokensmith.guard.asgi import GuardMiddleware, principal_of
from tokensmith.oauth.clients import NewClient
from tokensmith.web.connection import proxy_limits
from tokensmith.web.server import server_options

__all__ = ["alice", "port", "register", "server", "settings"]  # the protocol tests' fixtures

CSRF = {"x-tokensmith-csrf": "1"}


def recording_api(issuer: str, seen: list[dict[str, Any]], audience: str | None = None) -> Any:
    """A guarded API (JWT access tokens of ``issuer`` for ``audience``, by default the issuer)
    that notes every request it serves."""

    async def api(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        principal = principal_of(scope)
        seen.append(
            {
                "method": scope["method"],
                "path": scope["path"],
                "query": scope["query_string"].decode(),
                "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
                "body": body.decode(),
                "sub": principal.subject,
            }
        )
        payload = json.dumps({"sub": principal.subject, "path": scope["path"]}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"set-cookie", b"upstream=1; Path=/"),
            (b"x-powered-by", b"framework 1.0"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    guard = Guard.for_issuer(issuer, audience=audience or issuer)
    return GuardMiddleware(api, guard)


@dataclass
class Stack:
    server: ServerThread
    base: str  # where the BFF listens, http://localhost:PORT (its origin)
    bff: Bff
    client: Registered
    upstream_seen: list[dict[str, Any]]
    token_calls: list[str]  # the grant_type of every request the BFF sent to /token
    clock: FrozenClock
    tmp: Path

    def record(self, cookie: str) -> SessionRecord | None:
        return asyncio.run(_load_quietly(self.bff, cookie))

    def rewrite(self, cookie: str, **changes: Any) -> None:
        asyncio.run(_rewrite(self.bff, cookie, changes))

    def introspect(self, token: str) -> dict[str, Any]:
        response = httpx.post(
            self.server.base_url + "/introspect",
            data={"token": token},
            auth=(self.client.client_id, self.client.secret or ""),
        )
        assert response.status_code == 200, response.text
        return dict(response.json())


def _sessions_here(bff: Bff) -> Sessions:
    """The BFF's sessions, through a store of this event loop (a Redis client belongs to the
    loop that made it; the BFF's runs in the server's thread)."""
    config, sessions = bff.config, bff.sessions
    store = sessions.store
    if isinstance(store, RedisStore):
        store = RedisStore(Redis.from_url(config.store), config.redis_key_prefix)
    return Sessions(
        store,
        sessions._sealer,
        sessions._clock,
        idle=sessions.idle,
        absolute=sessions.absolute,
        login_timeout=sessions.login_timeout,
    )


async def _load_quietly(bff: Bff, cookie: str) -> SessionRecord | None:
    """The record as stored, without counting as use (the store is read directly)."""
    sessions = _sessions_here(bff)
    key = sessions.key_of(cookie)
    assert key is not None
    try:
        sealed = await sessions.store.get(key)
        return None if sealed is None else SessionRecord(**sessions._sealer.unseal(sealed, key))
    finally:
        if sessions.store is not bff.sessions.store:
            await sessions.store.aclose()


async def _rewrite(bff: Bff, cookie: str, changes: dict[str, Any]) -> None:
    record = await _load_quietly(bff, cookie)
    assert record is not None
    sessions = _sessions_here(bff)
    key = sessions.key_of(cookie)
    assert key is not None
    try:
        await sessions.save(key, replace(record, **changes))
    finally:
        if sessions.store is not bff.sessions.store:
            await sessions.store.aclose()


@pytest.fixture
def stack(server: ServerThread, register: Registrar, alice: str, tmp_path: Path) -> Iterator[Stack]:
    sock = listening_socket()
    origin = f"http://localhost:{sock.getsockname()[1]}"
    client = register(
        NewClient(
            "SPA (BFF)",
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=(origin + "/bff/callback",),
            scope="openid profile email orders:read",
        )
    )
    (tmp_path / "client-secret").write_text(client.secret or "")
    seen: list[dict[str, Any]] = []
    calls: list[str] = []
    clock = FrozenClock(time.time())
    with asgi_server(recording_api(server.base_url, seen)) as upstream:
        document = bff_document(origin, server.base_url, client.client_id, upstream, tmp_path)
        with running_bff(document, tmp_path, clock, calls, sock) as (_, bff):
            yield Stack(server, origin, bff, client, seen, calls, clock, tmp_path)


@contextmanager
def running_bff(
    document: dict[str, Any], tmp: Path, clock: FrozenClock, calls: list[str], sock: Any = None
) -> Iterator[tuple[str, Bff]]:
    """The BFF of ``document`` on loopback, as `tokensmith bff` runs it; ``calls`` gets the
    grant_type of every request it sends to the token endpoint."""

    async def count(request: httpx.Request) -> None:
        if request.url.path == "/token":
            form = dict(pair.split("=", 1) for pair in request.content.decode().split("&"))
            calls.append(form["grant_type"])

    config = parse_config(document, tmp)
    http = httpx.AsyncClient(timeout=5, event_hooks={"request": [count]})
    bff = build_bff(config, clock=clock, issuer_http=http)
    with asgi_server(bff, sock=sock, **server_options(proxy_limits(config))) as base:
        yield base, bff


def bff_document(
    origin: str, issuer: str, client_id: str, upstream: str, tmp: Path, **bff: Any
) -> dict[str, Any]:
    return {
        "bff": {
            "origin": origin,
            "store": f"sqlite:///{tmp / 'sessions.db'}",
            "session_key_file": str(tmp / "session.key"),
            **bff,
        },
        "authorization_server": {
            "issuer": issuer,
            "client_id": client_id,
            "client_secret_file": str(tmp / "client-secret"),
            "scopes": ["openid", "profile", "email", "orders:read"],
        },
        "upstream": [{"prefix": "/bff/api/orders", "url": upstream + "/orders"}],
    }


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """name -> the whole Set-Cookie line."""
    return {line.split("=", 1)[0]: line for line in response.headers.get_list("set-cookie")}


def cookie_value(line: str) -> str:
    return line.split(";", 1)[0].split("=", 1)[1]


@dataclass
class SpaUser:
    """A browser at the SPA: the BFF's cookies, sent back by hand (Secure cookies over plain
    http to localhost are what Chromium does; Python's cookie jar would not send them)."""

    stack: Stack
    session: str | None = None
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def start_login(self, return_to: str | None = "/") -> tuple[str, str]:
        """/bff/login: the issuer's authorization URL, and the login cookie's value."""
        params = {} if return_to is None else {"return_to": return_to}
        started = self.http.get(self.stack.base + "/bff/login", params=params)
        assert started.status_code == 302, started.text
        return started.headers["location"], cookie_value(set_cookies(started)[LOGIN_COOKIE])

    def authorize(self, url: str, consent: str = "allow") -> str:
        """Tokensmith's real login and consent pages; the redirect back to the BFF."""
        outcome = Browser(self.stack.server.base_url).authorize(url, consent=consent)
        assert outcome.location.startswith(self.stack.bff.config.origin + "/bff/callback?")
        return outcome.location

    def callback(self, location: str, login_cookie: str | None) -> httpx.Response:
        jar = [f"{SESSION_COOKIE}={self.session}"] if self.session else []
        jar += [f"{LOGIN_COOKIE}={login_cookie}"] if login_cookie else []
        cookies = {"cookie": "; ".join(jar)} if jar else {}
        parts = urlsplit(location)
        url = f"{self.stack.base}{parts.path}?{parts.query}"
        return self.http.get(url, headers=cookies)

    def sign_in(self, return_to: str = "/") -> httpx.Response:
        url, login = self.start_login(return_to)
        done = self.callback(self.authorize(url), login)
        assert done.status_code == 302, done.text
        self.session = cookie_value(set_cookies(done)[SESSION_COOKIE])
        return done

    def headers(self, **extra: str) -> dict[str, str]:
        cookie = {"cookie": f"{SESSION_COOKIE}={self.session}"} if self.session else {}
        return {**cookie, **extra}

    def get(self, path: str, **headers: str) -> httpx.Response:
        return self.http.get(self.stack.base + path, headers=self.headers(**headers))

    def raw(self, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
        """Only the session cookie and ``headers``: no CSRF header, no Origin unless given."""
        return self.http.request(method, self.stack.base + path, headers=self.headers(**headers))

    def api(self, method: str, path: str, body: bytes = b"", **headers: str) -> httpx.Response:
        sent = {**CSRF, "origin": self.stack.base, **headers}
        return self.http.request(
            method, self.stack.base + path, content=body, headers=self.headers(**sent)
        )


@pytest.fixture
def user(stack: Stack) -> Iterator[SpaUser]:
    person = SpaUser(stack)
    yield person
    person.http.close()
