"""Reading an inbound request's body under a cap: one reader for every route that takes a body (Slack's
`/slack/events`, the alert webhook), so both refuse the same way: too large before or while reading, a
connection gone mid-body as a `ConnectionResetError` (aiohttp raises a bare RuntimeError there), and a
body that is not all there in time as a `TimeoutError`."""

from __future__ import annotations

import asyncio

from aiohttp import web

CHUNK_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    """The body is (or announced itself as) over the route's cap."""


async def read_body(request: web.Request, limit: int, seconds: float | None = None) -> bytes:
    """The whole body, or BodyTooLarge past `limit` bytes, or TimeoutError when it is not all there within
    `seconds` (None: the caller bounds the time)."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge
    body = bytearray()
    async with asyncio.timeout(seconds):
        try:
            async for chunk in request.content.iter_chunked(CHUNK_BYTES):
                body.extend(chunk)
                if len(body) > limit:
                    raise BodyTooLarge
        except RuntimeError as error:  # aiohttp's stream when the connection closed under the read
            raise ConnectionResetError(str(error)) from None
    return bytes(body)
