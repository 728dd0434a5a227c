"""Shared plumbing for the checks that ask the issuer: pooled clients, short caches, fail closed.

A subclass builds one ``httpx.Request`` and judges one ``httpx.Response``; this class sends it
from async code or from a WSGI thread. Answers are cached under a SHA-256 of the credential (the
raw secret is never a cache key) for at most ``cache_seconds``, and never past the credential's
own expiry. Anything but a clear answer is ``ServiceUnavailable``: a check that could not run is
never a pass.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from tokensmith.core.clock import Clock, SystemClock
from tokensmith.core.secrets import fingerprint
from tokensmith.guard.cache import ExpiringCache
from tokensmith.guard.errors import GuardError, InvalidToken, ServiceUnavailable
from tokensmith.guard.principal import Principal

__all__ = ["RemoteCheck", "Verdict"]

log = logging.getLogger("tokensmith.guard")


@dataclass(frozen=True, slots=True)
class Verdict:
    """A cacheable answer: the principal, or the refusal's class and public description."""

    principal: Principal | None
    refusal: type[GuardError] = InvalidToken
    description: str = ""

    def unwrap(self) -> Principal:
        if self.principal is None:
            raise self.refusal(self.description)
        return self.principal


class RemoteCheck:
    what = "credential"

    def __init__(
        self,
        *,
        cache_seconds: float = 1.0,
        cache_entries: int = 10_000,
        timeout: float = 3.0,
        clock: Clock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= cache_seconds <= 300:
            raise ValueError("cache_seconds must be between 0 and 300")
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self.calls = 0  # requests sent to the issuer; for metrics and tests
        self._clock = clock or SystemClock()
        self._monotonic = monotonic
        self._cache: ExpiringCache[bytes, Verdict] = ExpiringCache(cache_entries)
        self._async: httpx.AsyncClient | None = None
        self._sync: httpx.Client | None = None

    def build(self, credential: str, context: str | None) -> httpx.Request:
        raise NotImplementedError

    def judge(self, response: httpx.Response) -> Verdict:
        raise NotImplementedError

    async def check_async(self, credential: str, context: str | None = None) -> Principal:
        key, cached = self._cached(credential, context)
        if cached is not None:
            return cached.unwrap()
        if self._async is None:
            self._async = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        try:
            self.calls += 1
            response = await self._async.send(self.build(credential, context))
            verdict = self.judge(response)
        except (httpx.HTTPError, ValueError) as exc:
            raise self._unavailable(credential, exc) from None
        return self._remember(key, verdict).unwrap()

    def check_sync(self, credential: str, context: str | None = None) -> Principal:
        key, cached = self._cached(credential, context)
        if cached is not None:
            return cached.unwrap()
        if self._sync is None:
            self._sync = httpx.Client(timeout=self.timeout, follow_redirects=False)
        try:
            self.calls += 1
            verdict = self.judge(self._sync.send(self.build(credential, context)))
        except (httpx.HTTPError, ValueError) as exc:
            raise self._unavailable(credential, exc) from None
        return self._remember(key, verdict).unwrap()

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
            self._async = None
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    def _cached(self, credential: str, context: str | None) -> tuple[bytes, Verdict | None]:
        material = credential if context is None else f"{credential}\n{context}"
        key = hashlib.sha256(material.encode("utf-8")).digest()
        return key, self._cache.get(key, self._monotonic())

    def _remember(self, key: bytes, verdict: Verdict) -> Verdict:
        # Good answers and plain "invalid" are stable; rate limits and source refusals are not.
        cacheable = verdict.principal is not None or verdict.refusal is InvalidToken
        if self.cache_seconds <= 0 or not cacheable:
            return verdict
        until = self._monotonic() + self.cache_seconds
        expires_at = verdict.principal.expires_at if verdict.principal else None
        if expires_at is not None:  # never past the credential's own expiry
            until = min(until, self._monotonic() + max(0, expires_at - self._clock.now()))
        self._cache.put(key, verdict, until)
        return verdict

    def _unavailable(self, credential: str, exc: Exception) -> ServiceUnavailable:
        detail = f"{type(exc).__name__}: {exc}"
        log.warning(
            f"{self.what} check failed; refusing",
            extra={"credential": fingerprint(credential), "detail": detail},
        )
        return ServiceUnavailable(f"the {self.what} cannot be checked right now", detail=detail)
