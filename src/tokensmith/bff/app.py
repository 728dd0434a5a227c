"""The BFF as one ASGI app: ``/bff/login``, ``/bff/callback``, ``/bff/session``, ``/bff/logout``,
``/bff/api/...``, and the SPA's static files from the same origin.

The pattern of the IETF draft "OAuth 2.0 for Browser-Based Applications" §6.1: the browser holds
a cookie that names a server-side session; tokens stay here. Every refusal is JSON under
``/bff/api`` and ``/bff/session`` (401 ``login_required``, 403 for CSRF), a plain page at the
callback; nothing reaches an upstream before the session and the CSRF rules are satisfied.
"""

from __future__ import annotations

import logging
import secrets
from urllib.parse import parse_qs

import httpx

from tokensmith.bff.config import API_PREFIX, BffConfig
from tokensmith.bff.cookies import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    clear_cookie,
    read_cookie,
    set_cookie,
)
from tokensmith.bff.csrf import csrf_refusal
from tokensmith.bff.http import (
    Message,
    Receive,
    Scope,
    Send,
    error_page,
    guarded_send,
    redirect,
    send_error,
    send_json,
)
from tokensmith.bff.oauth import IssuerClient, IssuerError, IssuerUnavailable
from tokensmith.bff.proxy import (
    BodyTooLarge,
    ClientTooSlow,
    Forwarder,
    Outgoing,
    rejected_token,
)
from tokensmith.bff.refresh import LoginRequired, Refresher
from tokensmith.bff.return_to import safe_return_to
from tokensmith.bff.sessions import PendingLogin, SessionRecord, Sessions
from tokensmith.bff.static import StaticFiles
from tokensmith.bff.stores import LockTimeout, StoreUnavailable
from tokensmith.core.asgi import serve_lifespan
from tokensmith.core.clock import Clock
from tokensmith.core.content_length import declared_too_large
from tokensmith.core.proxy_paths import path_is_forwardable
from tokensmith.core.secrets import (
    constant_time_equals,
    fingerprint,
    pkce_s256,
    random_token,
    redact_secrets,
)

__all__ = ["Bff"]

log = logging.getLogger("tokensmith.bff")
_FOREIGN_STATE = "The sign-in response does not belong to this sign-in (state)."
_SIGNED_OUT = [("set-cookie", clear_cookie(SESSION_COOKIE))]


class Bff:
    def __init__(
        self,
        config: BffConfig,
        sessions: Sessions,
        issuer: IssuerClient,
        clock: Clock,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.issuer = issuer
        self.clock = clock
        self.refresher = Refresher(sessions, issuer, clock, config.refresh_before)
        timeout = httpx.Timeout(config.upstream_timeout, connect=min(5.0, config.upstream_timeout))
        self.forwarder = Forwarder(
            client or httpx.AsyncClient(timeout=timeout, follow_redirects=False),
            config.max_body_bytes,
            config.client_timeout,
        )
        self.static = StaticFiles(config.static_dir) if config.static_dir else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        path: str = scope["path"]
        started = False
        guarded = guarded_send(send, no_store=path.startswith("/bff/"))

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await guarded(message)

        try:
            await self._route(scope, receive, sending, path)
        except (IssuerUnavailable, LockTimeout, StoreUnavailable):
            if not started:
                retry = [("retry-after", "5")]
                await send_error(guarded, "temporarily_unavailable", "try again shortly", retry)
        except Exception as exc:  # fail closed, in our format, never a traceback to the browser
            log.error(
                "request failed", extra={"error": type(exc).__name__, "path": redact_secrets(path)}
            )
            if not started:
                await send_error(guarded, "server_error", "something went wrong")

    async def _route(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        method: str = scope["method"]
        if path.startswith(API_PREFIX):
            await self._api(scope, receive, send)
        elif path == "/bff/login" and method == "GET":
            await self._login(scope, send)
        elif path == "/bff/callback" and method == "GET":
            await self._callback(scope, send)
        elif path == "/bff/session" and method == "GET":
            await self._session(scope, send)
        elif path == "/bff/logout" and method == "POST":
            await self._logout(scope, send)
        elif path.startswith("/bff/") or path == "/bff":
            await send_error(send, "not_found", "no such BFF endpoint")
        elif self.static is not None and method in ("GET", "HEAD"):
            await self.static.serve(path, send)
        else:
            await send_error(send, "not_found", "nothing here")

    # -- login -------------------------------------------------------------------------------

    async def _login(self, scope: Scope, send: Send) -> None:
        query = _query(scope)
        given = query.get("return_to", "/")
        return_to = safe_return_to(given)
        if return_to is None:
            await error_page(send, 400, "return_to must be a path of this site.")
            return
        verifier, state, nonce = random_token(32), random_token(32), random_token(32)
        try:
            url = await self.issuer.authorization_url(
                redirect_uri=self.config.redirect_uri,
                scope=" ".join(self.config.scopes),
                state=state,
                nonce=nonce,
                code_challenge=pkce_s256(verifier),
            )
        except IssuerError as exc:
            log.warning("login cannot start", extra={"error": exc.error})
            await error_page(send, 502, "The sign-in service is not available right now.")
            return
        pending = PendingLogin(state, nonce, verifier, return_to, self.clock.now())
        cookie = await self.sessions.start_login(pending)
        login = set_cookie(LOGIN_COOKIE, cookie, self.config.login_timeout)
        await redirect(send, url, [("set-cookie", login)])

    async def _callback(self, scope: Scope, send: Send) -> None:
        query = _query(scope)
        cookie = read_cookie(_header(scope, b"cookie"), LOGIN_COOKIE)
        pending = await self.sessions.pending_login(cookie)
        state = query.get("state")
        if pending is not None and (
            state is None or not constant_time_equals(state, pending.state)
        ):
            # Not this sign-in's answer (a forged link, say): the sign-in in progress and its
            # cookie are left alone, so that the real answer still finishes it.
            log.info("callback refused", extra={"reason": "state"})
            await error_page(send, 400, _FOREIGN_STATE)
            return
        pending = await self.sessions.finish_login(cookie)  # taken: a replay finds nothing
        done = [("set-cookie", clear_cookie(LOGIN_COOKIE))]
        problem = await self._callback_problem(query, pending)
        if problem is not None or pending is None:
            log.info("callback refused", extra={"reason": problem})
            await error_page(send, 400, problem or "This sign-in is not in progress.", done)
            return
        try:
            record = await self._sign_in(query["code"], pending)
        except IssuerUnavailable:
            await error_page(send, 503, "The sign-in service is not available right now.", done)
            return
        except IssuerError as exc:
            log.info("callback refused", extra={"reason": exc.error})
            await error_page(send, 400, "The sign-in could not be completed.", done)
            return
        session, _ = await self.sessions.create(record)
        previous = self.sessions.key_of(read_cookie(_header(scope, b"cookie"), SESSION_COOKIE))
        if previous is not None:  # a new login replaces this browser's session, never joins it
            await self._end_session(previous)
        log.info("signed in", extra={"subject": fingerprint(record.subject)})
        done.append(("set-cookie", set_cookie(SESSION_COOKIE, session, self.sessions.absolute)))
        await redirect(send, pending.return_to, done)

    async def _callback_problem(
        self, query: dict[str, str], pending: PendingLogin | None
    ) -> str | None:
        if pending is None:
            return "This sign-in is not in progress (it expired, or already finished)."
        state = query.get("state")
        if state is None or not constant_time_equals(state, pending.state):  # raced: taken since
            return _FOREIGN_STATE
        iss = query.get("iss")
        if iss is None and (await self.issuer.metadata()).iss_parameter_supported:
            return "The sign-in response does not name its issuer (iss)."
        if iss is not None and iss != self.issuer.issuer:  # RFC 9207 §2.4: a mix-up attack
            return "The sign-in response comes from another issuer (iss)."
        error = query.get("error")
        if error is not None:
            return f"The sign-in was not completed ({error})."
        if not query.get("code"):
            return "The sign-in response carries no code."
        return None

    async def _sign_in(self, code: str, pending: PendingLogin) -> SessionRecord:
        tokens = await self.issuer.exchange_code(code, pending.verifier, self.config.redirect_uri)
        if tokens.id_token is None:
            raise IssuerError("invalid_id_token", "the token response has no ID token")
        claims = await self.issuer.validate_id_token(tokens.id_token, pending.nonce)
        if "email" not in claims or "name" not in claims:  # Tokensmith says them at userinfo
            info = await self.issuer.userinfo(tokens.access_token, claims["sub"])
            claims = {**info, **claims}
        now = self.clock.now()
        name = claims.get("name") or claims.get("preferred_username")
        email = claims.get("email")
        return SessionRecord(
            subject=claims["sub"],
            name=name if isinstance(name, str) else None,
            email=email if isinstance(email, str) else None,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            access_expires_at=now + tokens.expires_in,
            created_at=now,
            last_seen_at=now,
        )

    # -- session and logout ------------------------------------------------------------------

    async def _current(self, scope: Scope) -> tuple[bytes, SessionRecord] | None:
        key = self.sessions.key_of(read_cookie(_header(scope, b"cookie"), SESSION_COOKIE))
        record = await self.sessions.load(key) if key is not None else None
        return (key, record) if key is not None and record is not None else None

    async def _session(self, scope: Scope, send: Send) -> None:
        current = await self._current(scope)
        if current is None:
            extra = {"authenticated": False}
            await send_error(send, "session_required", "sign in first", _SIGNED_OUT, extra)
            return
        record = current[1]
        ends = record.ends_at(self.sessions.idle, self.sessions.absolute)
        body = {"authenticated": True, "sub": record.subject, "name": record.name}
        await send_json(send, 200, {**body, "email": record.email, "expires_at": ends})

    async def _logout(self, scope: Scope, send: Send) -> None:
        refusal = csrf_refusal("POST", _headers(scope), self.config.origin)
        if refusal is not None:
            await send_error(send, "forbidden", refusal)
            return
        key = self.sessions.key_of(read_cookie(_header(scope, b"cookie"), SESSION_COOKIE))
        if key is not None:
            await self._end_session(key)
        await send_json(send, 200, {"authenticated": False}, _SIGNED_OUT)

    async def _end_session(self, key: bytes) -> None:
        """Delete the session and revoke its tokens at the issuer (RFC 7009)."""
        async with self.sessions.lock(key):  # not while a refresh is replacing the tokens
            record = await self.sessions.load(key)
            await self.sessions.end(key)
        if record is not None:
            if record.refresh_token is not None:
                await self.issuer.revoke(record.refresh_token, "refresh_token")
            await self.issuer.revoke(record.access_token, "access_token")

    # -- the API proxy -----------------------------------------------------------------------

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = csrf_refusal(scope["method"], _headers(scope), self.config.origin)
        if refusal is not None:
            await send_error(send, "forbidden", refusal)
            return
        path: str = scope["path"]
        upstream = self.config.upstream_for(path)
        if not path_is_forwardable(path, scope.get("raw_path") or path.encode()):
            await send_error(send, "invalid_request", "the path is not allowed")
            return
        if upstream is None:
            await send_error(send, "not_found", "no upstream for this path")
            return
        if declared_too_large(_header(scope, b"content-length"), self.config.max_body_bytes):
            await send_error(send, "payload_too_large", "the body is too large")
            return
        current = await self._current(scope)
        if current is None:
            await send_error(send, "session_required", "sign in first", _SIGNED_OUT)
            return
        try:
            body = await self.forwarder.read_body(receive)
        except BodyTooLarge:
            await send_error(send, "payload_too_large", "the body is too large")
            return
        except ClientTooSlow:
            await send_error(send, "request_timeout", "the body came too slowly")
            return
        outgoing = self.forwarder.outgoing(scope, upstream, body)
        try:
            await self._forward(scope, send, current, outgoing)
        except LoginRequired:
            await send_error(send, "session_required", "sign in again", _SIGNED_OUT)

    async def _forward(
        self, scope: Scope, send: Send, current: tuple[bytes, SessionRecord], outgoing: Outgoing
    ) -> None:
        key, record = current
        request_id = secrets.token_hex(12)
        record = await self.refresher.fresh(key, record)
        for attempt in (1, 2):
            try:
                response = await self.forwarder.send(
                    outgoing, record.access_token, request_id, scope
                )
            except httpx.TimeoutException:
                await send_error(send, "gateway_timeout", "the API did not answer")
                return
            except httpx.HTTPError:
                await send_error(send, "bad_gateway", "the API is unavailable")
                return
            if attempt == 1 and rejected_token(response):  # refresh once, then try again
                await response.aclose()
                record = await self.refresher.fresh(key, record, rejected=record.access_token)
                continue
            await self.forwarder.relay(send, response, request_id)
            return

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await serve_lifespan(receive, send, self.aclose)

    async def aclose(self) -> None:
        await self.forwarder.client.aclose()
        await self.issuer.aclose()
        await self.sessions.store.aclose()


def _header(scope: Scope, name: bytes) -> str | None:
    values = [v.decode("latin-1") for k, v in scope["headers"] if k == name]
    if not values:
        return None
    return "; ".join(values) if name == b"cookie" else values[0]


def _headers(scope: Scope) -> dict[str, str]:
    """Lower-case names; a header sent twice counts by its first value."""
    seen: dict[str, str] = {}
    for key, value in scope["headers"]:
        seen.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
    return seen


def _query(scope: Scope) -> dict[str, str]:
    """The query's parameters; one given twice is dropped (ambiguous, so absent)."""
    raw = scope.get("query_string", b"").decode("latin-1")
    try:
        parsed = parse_qs(raw, keep_blank_values=True, max_num_fields=50)
    except ValueError:
        return {}
    return {k: v[0] for k, v in parsed.items() if len(v) == 1}
