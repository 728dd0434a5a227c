"""The resource's private keys for encrypted access tokens, read once at start-up.

A source is a private JWK (a dict), a JWKS (a dict with ``keys``, several keys for a rotation,
told apart by ``kid``), PEM text, or the path of a PEM, JWK or JWKS file. Anything unreadable,
public, too small or outside the allowlist of ``jose/jwe.py`` is a ValueError naming the source,
so a misconfigured guard fails at start, never at the first request.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tokensmith.jose.jwe import DecryptionKey, decryption_key

__all__ = ["DecryptionSource", "load_decryption_keys"]

DecryptionSource = Mapping[str, Any] | str | os.PathLike[str]
_MAX_FILE_BYTES = 256 * 1024
_MAX_KEYS = 10


def load_decryption_keys(sources: Iterable[DecryptionSource]) -> tuple[DecryptionKey, ...]:
    keys: list[DecryptionKey] = []
    for source in sources:
        keys.extend(_keys_of(source))
    kids = [k.kid for k in keys]
    if len(set(kids)) != len(kids):
        raise ValueError("decryption keys must have distinct kids")
    if len(keys) > _MAX_KEYS:
        raise ValueError(f"at most {_MAX_KEYS} decryption keys")
    return tuple(keys)


def _keys_of(source: DecryptionSource) -> list[DecryptionKey]:
    if isinstance(source, Mapping):
        return _from_json(source, "a decryption key")
    text = str(source)
    if text.lstrip().startswith("-----BEGIN"):
        return [_one(text, "a PEM decryption key")]
    path = Path(text)
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise ValueError(f"decryption key file {path} is larger than 256 KiB")
        content = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read decryption key file {path}: {exc.strerror}") from None
    if content.lstrip().startswith("{"):
        try:
            data = json.loads(content)
        except ValueError:
            raise ValueError(f"decryption key file {path} is not JSON") from None
        if not isinstance(data, dict):
            raise ValueError(f"decryption key file {path} is not a JWK or JWKS")
        return _from_json(data, str(path))
    return [_one(content, str(path))]


def _from_json(data: Mapping[str, Any], where: str) -> list[DecryptionKey]:
    if "keys" not in data:
        return [_one(data, where)]
    keys = data["keys"]
    if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
        raise ValueError(f"{where}: a JWKS needs a non-empty keys list of JWKs")
    return [_one(k, where) for k in keys]


def _one(source: Mapping[str, Any] | str, where: str) -> DecryptionKey:
    try:
        return decryption_key(source)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
