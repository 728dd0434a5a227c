"""API keys checked in this process, for an async app that runs on Tokensmith's own services."""

from __future__ import annotations

from tokensmith.apikeys.verifier import ApiKeyRefused, ApiKeyVerifier
from tokensmith.guard.apikeys import key_principal
from tokensmith.guard.errors import ForbiddenSource, InvalidToken, RateLimited
from tokensmith.guard.principal import Principal

__all__ = ["LocalApiKeyVerifier"]


class LocalApiKeyVerifier:
    """Keys checked against the key store in this process, for an async app that runs on
    Tokensmith's own services (``Services.key_verifier``): no HTTP round trip, the same rules and
    the same revocation bound (``TOKENSMITH_API_KEY_MAX_STALENESS``)."""

    def __init__(self, verifier: ApiKeyVerifier) -> None:
        self._verifier = verifier

    async def check(self, key: str, source_ip: str | None) -> Principal:
        try:
            identity = await self._verifier.verify(key, source_ip)
        except ApiKeyRefused as refused:
            if refused.status == 403:
                raise ForbiddenSource(refused.description) from None
            if refused.status == 429:
                raise RateLimited(
                    refused.description, retry_after=refused.retry_after or 1
                ) from None
            raise InvalidToken(refused.description) from None
        return key_principal(identity.as_json())

    def check_blocking(self, key: str, source_ip: str | None) -> Principal:
        # The store is async and bound to its event loop; a WSGI app asks the server instead.
        raise TypeError("LocalApiKeyVerifier is for async apps; use RemoteApiKeyVerifier")
