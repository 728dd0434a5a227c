"""The client's directory on this machine, and how a file in it is written.

``$TOKENSMITH_CLIENT_HOME``, else ``$XDG_CONFIG_HOME/tokensmith``, else ``~/.config/tokensmith``.
The directory is created 0700 and every file in it 0600 from the first byte: each write goes to
a new file opened with ``O_CREAT | O_EXCL`` and mode 0600 (never widened by a umask), then is
renamed over the old one, so a reader sees the old file or the new one, never a torn or a
world-readable one. The non-secret preferences (the issuer last signed into) live here too.

What is read back is checked as strictly, since another user who can write to the home (a
shared or world-writable ``$TOKENSMITH_CLIENT_HOME``) could plant a session or a preference that
sends ``tokensmith login`` to their issuer: a file is opened without following a symlink, and
refused unless it is this user's and writable by no one else (a session file: readable by no one
else either); the kit's own directories (``sessions/``, ``locks/``) are refused when they are a
symlink or another user's.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tokensmith.client.errors import StorageError

__all__ = [
    "client_home",
    "ensure_private_dir",
    "read_json",
    "read_preferences",
    "write_preferences",
    "write_private",
]

_PREFERENCES = "config.json"
# Never through a symlink; never waiting on a FIFO planted in a file's place.
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
_READ_FLAGS |= getattr(os, "O_BINARY", 0)


def client_home(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("TOKENSMITH_CLIENT_HOME"):
        return Path(env["TOKENSMITH_CLIENT_HOME"])
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tokensmith"


def ensure_private_dir(path: Path, *, narrow: bool = True) -> Path:
    """``path`` as a directory, created 0700 (its parents too). An existing one is narrowed to
    0700 when ``narrow`` (the kit's own ``sessions/`` and ``locks/``), never otherwise: the
    client home may be a directory the user chose (``$TOKENSMITH_CLIENT_HOME``)."""
    try:
        for parent in reversed(path.parents):
            if not parent.exists():
                parent.mkdir(mode=0o700, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)
        if narrow and os.name == "posix":
            _check_own_dir(path)
            if path.stat().st_mode & 0o077:
                path.chmod(0o700)  # made with a wider mode: ours, narrowed
    except OSError as exc:
        raise StorageError(f"cannot create {path} ({exc.strerror})") from None
    return path


def _check_own_dir(path: Path) -> None:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise StorageError(f"{path} is not a directory of its own (a symlink?); refused")
    if info.st_uid != os.getuid():
        raise StorageError(f"{path} belongs to another user; refused")


def _check_own_file(path: Path, info: os.stat_result, private: bool) -> None:
    """Refuse a file another user owns or may write (or, ``private``, may read)."""
    if os.name != "posix":  # pragma: no cover - Windows: ACLs, not modes
        return
    if info.st_uid != os.getuid():
        raise StorageError(f"{path} belongs to another user; refused")
    if info.st_mode & (0o077 if private else 0o022):
        kind = "readable or writable" if private else "writable"
        raise StorageError(f"{path} is {kind} by other users; refused (remove it, sign in again)")


def write_private(path: Path, data: bytes, *, narrow: bool = True) -> None:
    """Replace ``path`` with ``data``, atomically, readable by this user only (``narrow``: as
    ``ensure_private_dir`` says, for the directory)."""
    ensure_private_dir(path.parent, narrow=narrow)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(temporary, flags, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise StorageError(f"cannot write {path} ({exc.strerror})") from None


def read_json(path: Path, *, private: bool = True) -> dict[str, Any] | None:
    """The JSON object in ``path``, None when there is none; StorageError when it is a symlink,
    another user's, or open to others (``_check_own_file``)."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if os.path.islink(path):
            raise StorageError(f"{path} is a symlink; refused") from None
        raise StorageError(f"cannot read {path} ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StorageError(f"{path} is not a regular file; refused")
        _check_own_file(path, info, private)
        with os.fdopen(os.dup(fd), "rb") as file:
            data = file.read()
    except OSError as exc:
        raise StorageError(f"cannot read {path} ({exc.strerror})") from None
    finally:
        os.close(fd)
    try:
        value = json.loads(data)
    except ValueError:
        raise StorageError(f"{path} is not valid JSON") from None
    if not isinstance(value, dict):
        raise StorageError(f"{path} is not a JSON object")
    return value


def read_preferences(home: Path) -> dict[str, Any]:
    return read_json(home / _PREFERENCES, private=False) or {}


def write_preferences(home: Path, preferences: Mapping[str, Any]) -> None:
    data = json.dumps(dict(preferences), sort_keys=True).encode()
    write_private(home / _PREFERENCES, data, narrow=False)
