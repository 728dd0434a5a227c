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

from collections.abc import Mapping

from tokensmith.errors import InvalidTarget
from tokensmith.jose.jwe import EncryptionKey
from tokensmith.jose.resource_keys import parse_resource_keys

__all__ = ["ResourceEncryption", "parse_resource_keys"]


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
