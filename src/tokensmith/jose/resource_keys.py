"""``TOKENSMITH_RESOURCE_ENCRYPTION_KEYS`` read and checked: resource identifier -> the public key
its access tokens are encrypted to (a JWK object, or the path of a JWK or JWKS file).

Here rather than beside ``oauth/resource_encryption.py``, which uses it, because the settings
check it at start and the settings are loaded by commands (the gateway, the BFF) that install
none of the server's protocol packages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokensmith.jose.jwe import EncryptionKey, encryption_key

__all__ = ["parse_resource_keys"]

_MAX_FILE_BYTES = 64 * 1024
_MAX_RESOURCES = 100


def parse_resource_keys(text: str) -> dict[str, EncryptionKey]:
    """The setting's value, checked; ValueError saying which resource is wrong and why."""
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError("is not JSON (an object of resource -> JWK or JWKS file path)") from None
    if not isinstance(data, dict) or len(data) > _MAX_RESOURCES:
        raise ValueError(f"must be a JSON object of at most {_MAX_RESOURCES} resources")
    keys: dict[str, EncryptionKey] = {}
    for resource, source in data.items():
        if not resource.startswith(("https://", "http://")) or "#" in resource:
            raise ValueError(f"{resource!r} is not an absolute http(s) URI without a fragment")
        try:
            keys[resource] = _key_of(source)
        except ValueError as exc:
            raise ValueError(f"the key of {resource}: {exc}") from None
    return keys


def _key_of(source: Any) -> EncryptionKey:
    if isinstance(source, dict):
        return encryption_key(source)
    if not isinstance(source, str):
        raise ValueError("is neither a JWK object nor a file path")
    path = Path(source)
    try:
        too_large = path.stat().st_size > _MAX_FILE_BYTES
        text = "" if too_large else path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    if too_large:
        raise ValueError(f"{path} is larger than 64 KiB")
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError(f"{path} is not JSON (a JWK or JWKS)") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a JWK or JWKS")
    if "keys" not in data:
        return encryption_key(data)
    problems = []
    for jwk in data["keys"] if isinstance(data["keys"], list) else ():
        if isinstance(jwk, dict) and jwk.get("use", "enc") == "enc":
            try:
                return encryption_key(jwk)
            except ValueError as exc:
                problems.append(str(exc))
    why = f" ({problems[0]})" if problems else ""
    raise ValueError(f"{path} holds no usable encryption key{why}")
