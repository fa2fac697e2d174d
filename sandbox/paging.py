"""Server-side paging with absolute next links that point back at the sandbox, as every Azure list does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar
from urllib.parse import quote, urlencode

from aiohttp import web

from sandbox.errors import ApiError

T = TypeVar("T")
SKIP_TOKEN = "$skiptoken"


def page(
    items: Sequence[T], request: web.Request, *, base_url: str, page_size: int
) -> tuple[list[T], str | None]:
    """The slice of `items` the request's `$skiptoken` asks for, and the link to the next slice (or None)."""
    raw = next((v for k, v in request.query.items() if k.lower() == SKIP_TOKEN), "0")
    try:
        offset = int(raw)
    except ValueError as exc:
        raise ApiError(400, "InvalidSkipToken", f"The skip token '{raw}' is not valid.") from exc
    if offset < 0:
        raise ApiError(400, "InvalidSkipToken", f"The skip token '{raw}' is not valid.")
    end = offset + page_size
    chunk = list(items[offset:end])
    if end >= len(items):
        return chunk, None
    pairs = [(k, v) for k, v in request.query.items() if k.lower() != SKIP_TOKEN]
    pairs.append((SKIP_TOKEN, str(end)))
    query = urlencode(pairs, quote_via=quote, safe="$'(),/:")
    return chunk, f"{base_url}{request.rel_url.raw_path}?{query}"
