"""A signed-in user's session: the stored refresh token, turned into access tokens on demand
(RFC 6749 §6), and ended at the server (RFC 7009).

A refresh is single-flight on the whole machine. In this process, ``SingleFlight`` lets one
thread or task refresh while the others wait for its token. Across processes, the refresh runs
under an exclusive lock file beside the store (``locking.py``) and starts by reading the stored
session again: when its refresh token is no longer the one this process last read, another
process has rotated it, and the old one is never presented (Tokensmith would take that as reuse
and revoke the whole family, SECURITY.md case 27). The rotated refresh token is stored before the
new access token is handed to anyone: a crash in between leaves a session that still works.

A session signed in with DPoP keeps its key in the store with it (``StoredSession.dpop_key``):
every refresh carries a proof by that key (a public client's refresh token is bound to it,
RFC 9449 §5), and ``SessionAuth`` sends the bound access tokens with proofs.
"""

from __future__ import annotations

import hmac
import logging
from pathlib import Path

import httpx

from tokensmith.client.bearer import BearerAuth
from tokensmith.client.bounded import send_bounded
from tokensmith.client.discovery import ServerMetadata
from tokensmith.client.dpop import DpopKey
from tokensmith.client.errors import NotSignedIn, StorageError
from tokensmith.client.home import client_home
from tokensmith.client.locking import file_lock
from tokensmith.client.storage import SessionStore, StoredSession, session_key
from tokensmith.client.tokens import AccessToken, SingleFlight, post_form, token_from_response
from tokensmith.core.clock import Clock, SystemClock

__all__ = ["Session", "SessionAuth", "expiry_of"]

log = logging.getLogger("tokensmith.client")


def expiry_of(body: dict[str, object], now: int) -> int | None:
    """The refresh token's end, where the server says (``refresh_token_expires_in``)."""
    seconds = body.get("refresh_token_expires_in")
    return now + seconds if type(seconds) is int and seconds > 0 else None


class Session:
    """One user's session with one issuer, through one client id."""

    def __init__(
        self,
        metadata: ServerMetadata,
        stored: StoredSession,
        store: SessionStore,
        *,
        home: Path | None = None,
        http: httpx.Client | None = None,
        clock: Clock | None = None,
        scope: str | None = None,
        resource: str | None = None,
        close_http: bool | None = None,
    ) -> None:
        self.metadata = metadata
        self.store = store
        self._stored = stored
        self._lock_path = (
            (home or client_home())
            / "locks"
            / (session_key(stored.issuer, stored.client_id) + ".lock")
        )
        self._own_http = http is None if close_http is None else close_http
        self._http = http or httpx.Client(timeout=10)
        self._clock = clock or SystemClock()
        self.scope, self.resource = scope, resource
        self.tokens = SingleFlight(self._refresh, self._clock)
        self.refreshes = 0  # refresh requests this object sent; for tests
        self.dpop = _stored_key(stored, self._clock)

    @classmethod
    def load(
        cls,
        metadata: ServerMetadata,
        client_id: str,
        store: SessionStore,
        *,
        home: Path | None = None,
        http: httpx.Client | None = None,
        clock: Clock | None = None,
        scope: str | None = None,
        resource: str | None = None,
    ) -> Session:
        """The stored session of ``client_id`` at the issuer; NotSignedIn if there is none."""
        stored = store.load(metadata.issuer, client_id)
        if stored is None:
            raise NotSignedIn(f"not signed in to {metadata.issuer} as {client_id}")
        return cls(
            metadata, stored, store, home=home, http=http, clock=clock, scope=scope,
            resource=resource,
        )  # fmt: skip

    @property
    def stored(self) -> StoredSession:
        return self._stored

    def access_token(self) -> AccessToken:
        """A valid access token, refreshed when due."""
        return self.tokens.get()

    def auth(self) -> SessionAuth:
        return SessionAuth(self)

    def adopt(self, stored: StoredSession, token: AccessToken | None) -> None:
        """Take the session a sign-in just stored, and the access token it brought."""
        self._stored = stored
        if token is not None:
            self.tokens.seed(token)

    def _refresh(self) -> AccessToken:
        with file_lock(self._lock_path):
            current = self.store.load(self._stored.issuer, self._stored.client_id)
            if current is None:
                raise NotSignedIn(f"signed out of {self._stored.issuer}")
            if not hmac.compare_digest(
                current.refresh_token.encode(), self._stored.refresh_token.encode()
            ):
                log.debug("the stored refresh token was rotated by another process")
            now = self._clock.now()
            form = {
                "grant_type": "refresh_token",
                "refresh_token": current.refresh_token,
                "client_id": current.client_id,
            }
            if self.scope:
                form["scope"] = self.scope
            if self.resource:
                form["resource"] = self.resource
            self.refreshes += 1
            body = post_form(self._http, self.metadata.token_endpoint, form, dpop=self.dpop)
            token = token_from_response(body, now, dpop=self.dpop is not None)
            rotated = body.get("refresh_token")
            if isinstance(rotated, str) and rotated:
                current = current.replaced(rotated, expiry_of(body, now))
                self.store.save(current)  # before the access token leaves this function
            self._stored = current
            return token

    def logout(self) -> bool:
        """Revoke the refresh token (RFC 7009 §2.1) and delete the stored session, locally even
        when the server cannot be reached; True when the server confirmed the revocation."""
        with file_lock(self._lock_path):
            current = self.store.load(self._stored.issuer, self._stored.client_id) or self._stored
            revoked = self._revoke(current.refresh_token, current.client_id)
            self.store.delete(current.issuer, current.client_id)
            self.tokens.forget()
            return revoked

    def _revoke(self, refresh_token: str, client_id: str) -> bool:
        endpoint = self.metadata.revocation_endpoint
        if endpoint is None:
            return False
        form = {
            "token": refresh_token,
            "token_type_hint": "refresh_token",
            "client_id": client_id,
        }
        request = self._http.build_request("POST", endpoint, data=form)
        try:  # RFC 7009 §2.2: the body says nothing; none of it is read
            response, _ = send_bounded(self._http, request, 0)
        except httpx.HTTPError as exc:
            log.warning("revocation endpoint unreachable (%s)", type(exc).__name__)
            return False
        return response.status_code == 200

    def replace_http(self, http: httpx.Client) -> None:
        """Use ``http`` from now on, and close it with the session."""
        self._http, self._own_http = http, True

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Session {self._stored.issuer} {self._stored.client_id}>"


def _stored_key(stored: StoredSession, clock: Clock) -> DpopKey | None:
    if stored.dpop_key is None:
        return None
    try:
        return DpopKey.from_stored(stored.dpop_key, clock=clock)
    except (ValueError, TypeError, KeyError):
        raise StorageError("the stored session's DPoP key is unreadable; sign in again") from None


class SessionAuth(BearerAuth):
    """``httpx.Auth`` for a signed-in user: the session's access token, refreshed when due."""

    def __init__(self, session: Session) -> None:
        self.session = session
        super().__init__(session.tokens, session.dpop)
