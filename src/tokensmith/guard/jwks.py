"""The issuer's JWKS, fetched, cached, refreshed in the background, and never over-fetched.

Keys are imported by ``tokensmith.jose.keys`` (a key must pin its ``alg``; an RSA key must be
2048-8192 bits) and pinned for the validator. A ``kid`` we do not know may mean the issuer
rotated, so it triggers a refetch, but at most one per ``unknown_kid_cooldown`` seconds: a flood
of made-up ``kid``s costs the issuer one request per window (SECURITY.md case 6). A refetch that
fails leaves ``last_fetch_failed`` set, so the guard answers 503 rather than "unknown key".
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from tokensmith.guard.errors import ServiceUnavailable
from tokensmith.guard.pinned import PinnedKey, pin
from tokensmith.jose.keys import verification_key_from_jwk

__all__ = ["JwksCache", "parse_jwks"]

log = logging.getLogger("tokensmith.guard.jwks")
MAX_JWKS_BYTES = 64 * 1024
MAX_KEYS = 32


class JwksCache:
    def __init__(
        self,
        jwks_uri: str,
        *,
        refresh_interval: float = 300.0,
        unknown_kid_cooldown: float = 30.0,
        timeout: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.jwks_uri = jwks_uri
        self.refresh_interval = refresh_interval
        self.unknown_kid_cooldown = unknown_kid_cooldown
        self.timeout = timeout
        self.keys: Mapping[str, PinnedKey] = {}
        self.fetches = 0  # how many times we asked the issuer; for metrics and tests
        self._monotonic = monotonic
        self.on_change = on_change  # the validator's forget(): a removed key ends its tokens
        self._fetched_at: float | None = None
        self._unknown_kid_at: float | None = None
        self.retry_after_failure = 1.0
        self.last_fetch_failed = False  # the newest fetch, of any kind, did not install keys
        self._failed_at: float | None = None
        self._lock = threading.Lock()  # one sync fetch at a time
        self._first_load: asyncio.Lock | None = None
        self._task: asyncio.Task[None] | None = None

    async def ensure_loaded(self) -> None:
        """Load on first use; concurrent first requests share one fetch, failures back off."""
        if self._fetched_at is not None:
            return
        if self._first_load is None:
            self._first_load = asyncio.Lock()
        async with self._first_load:
            if self._fetched_at is None:
                self._refuse_during_backoff()
                try:
                    await self.refresh()
                except ServiceUnavailable:
                    self._failed_at = self._monotonic()
                    raise

    def ensure_loaded_sync(self) -> None:
        if self._fetched_at is not None:
            return
        self._refuse_during_backoff()
        try:
            self.refresh_sync()
        except ServiceUnavailable:
            self._failed_at = self._monotonic()
            raise

    def _refuse_during_backoff(self) -> None:
        failed = self._failed_at
        if failed is not None and self._monotonic() - failed < self.retry_after_failure:
            raise ServiceUnavailable("the issuer's signing keys cannot be read right now")

    @property
    def loaded(self) -> bool:
        return self._fetched_at is not None

    def is_stale(self) -> bool:
        return self._fetched_at is None or (
            self._monotonic() - self._fetched_at >= self.refresh_interval
        )

    def may_refetch_for_unknown_kid(self) -> bool:
        """Claim the unknown-kid refetch of this window; False while the cool-down runs."""
        now = self._monotonic()
        if (
            self._unknown_kid_at is not None
            and now - self._unknown_kid_at < self.unknown_kid_cooldown
        ):
            return False
        self._unknown_kid_at = now
        return True

    async def refresh(self) -> None:
        """Fetch now (async callers); ServiceUnavailable if the issuer cannot be read."""
        self.fetches += 1
        try:
            async with (
                httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client,
                client.stream("GET", self.jwks_uri) as response,
            ):
                body = await _read_capped_async(response)
        except httpx.HTTPError as exc:
            raise self._unavailable(exc) from None
        self._install(body)

    def refresh_sync(self) -> None:
        """Fetch now (threaded WSGI callers)."""
        with self._lock:
            self.fetches += 1
            try:
                with (
                    httpx.Client(timeout=self.timeout, follow_redirects=False) as client,
                    client.stream("GET", self.jwks_uri) as response,
                ):
                    body = _read_capped(response)
            except httpx.HTTPError as exc:
                raise self._unavailable(exc) from None
            self._install(body)

    def refresh_in_background(self) -> None:
        """Stale keys keep working while a task fetches new ones; failures are only logged."""
        if self._task is not None and not self._task.done():
            return
        self._fetched_at = self._monotonic()  # do not start another while this one runs
        self._task = asyncio.get_running_loop().create_task(self._quiet_refresh())

    def refresh_in_thread(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # a fetch is already running
        self._lock.release()
        self._fetched_at = self._monotonic()
        threading.Thread(target=self._quiet_refresh_sync, daemon=True).start()

    async def _quiet_refresh(self) -> None:
        try:
            await self.refresh()
        except ServiceUnavailable as exc:
            log.warning(
                "JWKS refresh failed; keeping the keys we have", extra={"detail": exc.detail}
            )

    def _quiet_refresh_sync(self) -> None:
        try:
            self.refresh_sync()
        except ServiceUnavailable as exc:
            log.warning(
                "JWKS refresh failed; keeping the keys we have", extra={"detail": exc.detail}
            )

    def _install(self, body: bytes) -> None:
        try:
            keys = parse_jwks(json.loads(body))
        except ValueError as exc:
            raise self._unavailable(exc) from None
        # Not only the kids: a key replaced under its kid (new material or alg) is a change too,
        # or the validator would keep judging its remembered headers and tokens by the old key.
        changed = keys != self.keys
        self.keys = keys
        self.last_fetch_failed = False
        self._fetched_at = self._monotonic()
        if changed and self.on_change is not None:
            self.on_change()

    def _unavailable(self, exc: Exception) -> ServiceUnavailable:
        self.last_fetch_failed = True
        detail = f"JWKS at {self.jwks_uri}: {type(exc).__name__}: {exc}"
        log.warning("JWKS fetch failed", extra={"detail": detail})
        return ServiceUnavailable(
            "the issuer's signing keys cannot be read right now", detail=detail
        )


def parse_jwks(document: Any) -> dict[str, PinnedKey]:
    """Pinned keys of a JWKS document; keys we cannot use are skipped, not fatal."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    found: dict[str, PinnedKey] = {}
    for jwk in document["keys"][:MAX_KEYS]:
        if not isinstance(jwk, dict):
            continue
        try:
            key = pin(verification_key_from_jwk(jwk))
        except (ValueError, TypeError, KeyError) as exc:
            log.info("JWKS key skipped", extra={"kid": str(jwk.get("kid"))[:64], "why": str(exc)})
            continue
        found[key.kid] = key
    return found


def _check(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise httpx.HTTPStatusError(
            f"status {response.status_code}", request=response.request, response=response
        )
    declared = response.headers.get("content-length")
    if (
        declared is not None
        and declared.isascii()
        and declared.isdigit()
        and int(declared) > MAX_JWKS_BYTES
    ):
        raise httpx.DecodingError("JWKS document is too large")


def _read_capped(response: httpx.Response) -> bytes:
    _check(response)
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > MAX_JWKS_BYTES:
            raise httpx.DecodingError("JWKS document is too large")
    return bytes(body)


async def _read_capped_async(response: httpx.Response) -> bytes:
    _check(response)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_JWKS_BYTES:
            raise httpx.DecodingError("JWKS document is too large")
    return bytes(body)
