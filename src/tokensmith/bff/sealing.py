"""What the BFF keeps at rest: records named by a keyed hash of the cookie, sealed with AES-GCM.

The cookie holds a 256-bit random id and nothing else. The store names each record by
HMAC-SHA256 of that id under a key derived from the session key, so a copy of the store holds no
id a browser could present. Each record is sealed with AES-256-GCM (``core/sealing.py``, a
subkey of the same key) with its own store key as associated data: a sealed record moved to
another key does not open. The session key comes from the configuration's environment variable,
or a file created with mode 0600 on first start.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tokensmith.core.sealing import MasterKey, SealError, generate_master_key
from tokensmith.core.secrets import keyed_hash, random_token
from tokensmith.errors import ConfigError

__all__ = ["SealError", "Sealer", "load_or_create_session_key", "new_session_id"]

SESSION_ID_BYTES = 32


def new_session_id() -> str:
    """A cookie value: 256 random bits, base64url (43 characters)."""
    return random_token(SESSION_ID_BYTES)


class Sealer:
    def __init__(self, key: MasterKey) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "Sealer(<hidden>)"

    def record_key(self, kind: str, cookie: str) -> bytes:
        """The store's name for the record a cookie of this kind (session, login) refers to."""
        return kind.encode("ascii") + b":" + keyed_hash(self._key.pepper, f"{kind}:{cookie}")

    def seal(self, record: dict[str, Any], key: bytes) -> bytes:
        return self._key.seal(json.dumps(record, separators=(",", ":")).encode(), key.hex())

    def unseal(self, sealed: bytes, key: bytes) -> dict[str, Any]:
        """The record; SealError if it was altered, moved, or sealed under another key."""
        record = json.loads(self._key.unseal(sealed, key.hex()))
        if not isinstance(record, dict):
            raise SealError("sealed record is not an object")
        return record


def load_or_create_session_key(text: str | None, path: Path | None) -> MasterKey:
    """The session key from the configuration's value, else from its file (made if absent)."""
    if text is None:
        assert path is not None
        text = _read_or_create(path)
    try:
        return MasterKey.from_text(text)
    except ValueError as exc:
        raise ConfigError(f"the BFF session key: {exc}") from None


def _read_or_create(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(f"the BFF session key file {path}: {exc.strerror}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    text = generate_master_key()
    try:  # O_EXCL: two first starts at once never write two keys
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii")
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text + "\n")
    return text
