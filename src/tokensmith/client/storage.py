"""Where a signed-in user's session is kept: the OS keyring, or a private file.

What is stored (``StoredSession``): the refresh token, the issuer, the client id, the granted
scope, the subject and the few ID token claims ``whoami`` shows, until when the session lasts,
and the session's DPoP private key when its tokens are bound (RFC 9449): kept beside the
refresh token it is bound to, so a restarted process proves the same key. Access tokens are
never stored: they live in the memory of the process that asked.

``open_store`` picks the ``keyring`` package's backend (macOS Keychain, Windows Credential
Locker, Secret Service), one entry per issuer and client under the service "tokensmith". Where
there is none (``keyring.backends.fail``, headless Linux) or it fails, a JSON file per session in
``<client home>/sessions/`` (mode 0600, ``home.py``), after a one-line warning saying where.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tokensmith.client.errors import StorageError
from tokensmith.client.home import client_home, read_json, write_private

__all__ = [
    "FileStore",
    "KeyringStore",
    "SessionStore",
    "StoredSession",
    "open_store",
    "session_key",
]

SERVICE = "tokensmith"
# The ID token claims kept for ``whoami`` (OIDC Core §5.1): who, never what they may do.
SHOWN_CLAIMS = ("sub", "name", "preferred_username", "email", "email_verified", "auth_time")


@dataclass(frozen=True)
class StoredSession:
    issuer: str
    client_id: str
    refresh_token: str = field(repr=False)
    scope: str = ""
    subject: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    expires_at: int | None = None  # the refresh token's end, when the server said
    signed_in_at: int = 0
    dpop_key: Mapping[str, Any] | None = field(default=None, repr=False)  # DpopKey.to_stored

    def to_json(self) -> str:
        data = {**asdict(self), "claims": dict(self.claims)}
        if self.dpop_key is None:
            del data["dpop_key"]  # as sessions were before DPoP
        else:
            data["dpop_key"] = dict(self.dpop_key)
        return json.dumps({"version": 1, **data})

    @classmethod
    def from_json(cls, text: str | bytes) -> StoredSession:
        try:
            data = json.loads(text)
            if data.pop("version", 1) != 1:
                raise ValueError("unknown version")
            session = cls(**data)
        except (ValueError, TypeError):
            raise StorageError("a stored session is unreadable; sign in again") from None
        if not isinstance(session.refresh_token, str) or not session.refresh_token:
            raise StorageError("a stored session is unreadable; sign in again")
        if session.dpop_key is not None and not isinstance(session.dpop_key, dict):
            raise StorageError("a stored session is unreadable; sign in again")
        return session

    def replaced(self, refresh_token: str, expires_at: int | None) -> StoredSession:
        return StoredSession(
            self.issuer,
            self.client_id,
            refresh_token,
            self.scope,
            self.subject,
            self.claims,
            expires_at if expires_at is not None else self.expires_at,
            self.signed_in_at,
            self.dpop_key,
        )


def session_key(issuer: str, client_id: str) -> str:
    """A stable name for one issuer and client: a digest, so it is safe as a file name."""
    return hashlib.sha256(f"{issuer.removesuffix('/')}\n{client_id}".encode()).hexdigest()[:32]


class SessionStore(Protocol):
    """One stored session per issuer and client id."""

    location: str  # for people: where sessions are kept

    def load(self, issuer: str, client_id: str) -> StoredSession | None: ...

    def save(self, session: StoredSession) -> None: ...

    def delete(self, issuer: str, client_id: str) -> bool: ...


class FileStore:
    """``warn`` is told once, before the first session is written, where it is kept."""

    def __init__(self, directory: Path, *, warn: Callable[[str], object] | None = None) -> None:
        self.directory = directory
        self.location = str(directory)
        self._warn = warn

    def _path(self, issuer: str, client_id: str) -> Path:
        return self.directory / f"{session_key(issuer, client_id)}.json"

    def load(self, issuer: str, client_id: str) -> StoredSession | None:
        data = read_json(self._path(issuer, client_id))
        return None if data is None else StoredSession.from_json(json.dumps(data))

    def save(self, session: StoredSession) -> None:
        warn, self._warn = self._warn, None
        if warn is not None:
            warn(
                f"tokensmith: no system keyring available; sessions are kept in {self.directory}"
                " (mode 0600)"
            )
        write_private(self._path(session.issuer, session.client_id), session.to_json().encode())

    def delete(self, issuer: str, client_id: str) -> bool:
        path = self._path(issuer, client_id)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StorageError(f"cannot delete {path} ({exc.strerror})") from None
        return True


class KeyringStore:
    """A ``keyring`` backend: the OS keychain, or any ``keyring.backend.KeyringBackend``."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        name = getattr(backend, "name", None)
        self.location = f"the system keyring ({name if isinstance(name, str) else 'keyring'})"

    @staticmethod
    def _user(issuer: str, client_id: str) -> str:
        return f"{issuer.removesuffix('/')} {client_id}"

    def load(self, issuer: str, client_id: str) -> StoredSession | None:
        text = self._call(self.backend.get_password, SERVICE, self._user(issuer, client_id))
        return None if text is None else StoredSession.from_json(text)

    def save(self, session: StoredSession) -> None:
        user = self._user(session.issuer, session.client_id)
        self._call(self.backend.set_password, SERVICE, user, session.to_json())

    def delete(self, issuer: str, client_id: str) -> bool:
        import keyring.errors

        try:
            self.backend.delete_password(SERVICE, self._user(issuer, client_id))
        except keyring.errors.PasswordDeleteError:
            return False
        except Exception as exc:
            raise StorageError(f"the keyring failed ({type(exc).__name__})") from None
        return True

    @staticmethod
    def _call(method: Callable[..., Any], *args: str) -> Any:
        try:
            return method(*args)
        except Exception as exc:  # a backend's own errors; their text may echo the value
            raise StorageError(f"the keyring failed ({type(exc).__name__})") from None


def usable_keyring() -> Any | None:
    """The keyring backend, or None where there is none worth the name."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 1) <= 0:
            return None
        backend.get_password(SERVICE, "probe")  # a locked or broken backend says so now
    except Exception:
        return None
    return backend


def open_store(
    home: Path | None = None, *, warn: Callable[[str], object] | None = None
) -> SessionStore:
    """The keyring when one is usable, else the file store, which warns (on stderr unless
    ``warn`` says otherwise) where it keeps a session when it first writes one."""
    backend = usable_keyring()
    if backend is not None:
        return KeyringStore(backend)
    return FileStore((home or client_home()) / "sessions", warn=warn or _stderr)


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
