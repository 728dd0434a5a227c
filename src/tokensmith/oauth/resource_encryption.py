"""Access tokens encrypted to the resource they are for (RFC 7516; RFC 9068 §2.1 with a nested
JWT, RFC 7519 §5.2): configured per resource, by ``TOKENSMITH_RESOURCE_ENCRYPTION_KEYS``.

The setting is a JSON object from resource identifier (an RFC 8707 ``resource``, the token's
``aud``) to that resource's public key: a JWK object, or the path of a JWK or JWKS file (the
first key fit for encryption is taken). Its ``alg`` decides key management (default
RSA-OAEP-256 for RSA, ECDH-ES for EC and X25519); content encryption is A256GCM.

A token whose audience is one such resource is signed, then encrypted to it, and stored by the
keyed hash of what was issued (the server cannot open it: introspection and revocation find it
by that hash). A token for several resources where one of them takes encryption is refused with
``invalid_target``: encrypted to one key, it would be unreadable to the others, and sent plain,
it would reach the one that asked for secrecy readable. Opaque tokens are not affected.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tokensmith.errors import InvalidTarget
from tokensmith.jose.jwe import EncryptionKey, encryption_key

__all__ = ["ResourceEncryption", "parse_resource_keys"]

_MAX_FILE_BYTES = 64 * 1024
_MAX_RESOURCES = 100


class ResourceEncryption:
    """Which resources take encrypted access tokens, and their keys."""

    def __init__(self, keys: Mapping[str, EncryptionKey] | None = None) -> None:
        self._keys = dict(keys or {})

    def __bool__(self) -> bool:
        return bool(self._keys)

    def key_for(self, audience: tuple[str, ...]) -> EncryptionKey | None:
        """The key the token for ``audience`` is encrypted to, or None for a plain JWT;
        InvalidTarget for several resources of which one takes encryption."""
        if not self._keys:
            return None
        encrypting = [aud for aud in audience if aud in self._keys]
        if not encrypting:
            return None
        if len(audience) > 1:
            raise InvalidTarget(
                "a resource that takes encrypted tokens must be the token's only resource"
            )
        return self._keys[encrypting[0]]


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
