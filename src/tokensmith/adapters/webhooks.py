"""Security notifications POSTed to the operator's webhooks: signed, retried, never in the way.

``notify`` only queues (bounded; the oldest undelivered message is dropped when full, and counted),
so a receiver that hangs or fails cannot slow the request that raised the event. A background task
delivers each message to every URL, retrying timeouts, connection errors, 429 and 5xx with
exponential backoff.

Each request carries ``Tokensmith-Signature: t=<unix time>,v1=<hex HMAC-SHA256>`` over
``"<t>.<body>"`` with the shared secret; receivers recompute it, compare in constant time, and
refuse an old ``t`` to stop replays. ``Tokensmith-Delivery`` is unique per message, for
deduplication.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = ["WebhookSender", "sign"]

log = logging.getLogger(__name__)


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class WebhookSender:
    def __init__(
        self,
        urls: tuple[str, ...],
        secret: bytes,
        *,
        max_queue: int = 1000,
        attempts: int = 5,
        first_delay: float = 1.0,
        timeout: float = 5.0,
    ) -> None:
        self._urls = urls
        self._secret = secret
        self._queue: deque[tuple[str, bytes]] = deque(maxlen=max_queue)
        self._wake = asyncio.Event()
        self._attempts = attempts
        self._first_delay = first_delay
        self._timeout = timeout
        self.dropped = 0
        self.delivered = 0
        self.failed = 0

    def notify(self, event: str, payload: dict[str, Any]) -> None:
        if not self._urls:
            return
        delivery = secrets.token_hex(16)
        body = json.dumps(
            {"event": event, "delivery": delivery, "at": int(time.time()), "data": payload},
            separators=(",", ":"),
            default=str,
        ).encode()
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
            log.warning("webhook queue full: oldest message dropped", extra={"event": event})
        self._queue.append((delivery, body))
        self._wake.set()

    async def run(self, concurrency: int = 16) -> None:
        """Deliver forever (a background task). Deliveries run side by side, so one receiver
        that keeps failing delays no other message."""
        slots = asyncio.Semaphore(concurrency)
        running: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client:
            try:
                while True:
                    await self._wake.wait()
                    self._wake.clear()
                    while self._queue:
                        delivery, body = self._queue.popleft()
                        for url in self._urls:
                            await slots.acquire()
                            task = asyncio.create_task(
                                self._deliver(client, url, delivery, body, slots)
                            )
                            running.add(task)
                            task.add_done_callback(running.discard)
            finally:
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)

    async def _deliver(
        self,
        client: httpx.AsyncClient,
        url: str,
        delivery: str,
        body: bytes,
        slots: asyncio.Semaphore,
    ) -> None:
        try:
            await self._attempt_all(client, url, delivery, body)
        finally:
            slots.release()

    async def _attempt_all(
        self, client: httpx.AsyncClient, url: str, delivery: str, body: bytes
    ) -> None:
        where = _origin(url)  # a webhook URL may carry a secret in its path or query
        delay = self._first_delay
        for attempt in range(1, self._attempts + 1):
            timestamp = int(time.time())
            headers = {
                "content-type": "application/json",
                "user-agent": "tokensmith-webhooks",
                "tokensmith-delivery": delivery,
                "tokensmith-signature": sign(self._secret, timestamp, body),
            }
            outcome: str
            try:
                response = await client.post(url, content=body, headers=headers)
                if response.status_code < 300:
                    self.delivered += 1
                    return
                outcome = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    break  # the receiver refused this message; retrying will not change that
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            log.warning(
                "webhook delivery failed",
                extra={"url": where, "attempt": attempt, "outcome": outcome, "delivery": delivery},
            )
            if attempt < self._attempts:
                await asyncio.sleep(delay)
                delay *= 2
        self.failed += 1
        log.error("webhook message given up", extra={"url": where, "delivery": delivery})


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
