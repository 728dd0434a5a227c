"""Reading a server's answer without believing its size (RFC 9700 §4.1: the client must not trust
what a server it was pointed at says).

At most ``limit`` bytes of the body are read, whatever ``Content-Length`` says or does not say,
then the connection is dropped: an issuer's metadata or a token endpoint's answer that never ends
costs ``limit`` bytes of memory, not all of it.
"""

from __future__ import annotations

import httpx

__all__ = ["Answer", "send_bounded", "send_bounded_async"]

Answer = tuple[httpx.Response, bytes | None]  # the body is None when it was over the limit


def send_bounded(client: httpx.Client, request: httpx.Request, limit: int) -> Answer:
    response = client.send(request, stream=True)
    try:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limit:
                return response, None
        return response, bytes(body)
    finally:
        response.close()


async def send_bounded_async(
    client: httpx.AsyncClient, request: httpx.Request, limit: int
) -> Answer:
    response = await client.send(request, stream=True)
    try:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > limit:
                return response, None
        return response, bytes(body)
    finally:
        await response.aclose()
