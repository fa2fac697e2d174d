"""Wire timestamps, read once for every part of the bot."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 wire timestamp (`Z`, 7 fractional digits) as aware UTC; None when absent or unreadable.

    Python 3.11's `fromisoformat` reads any number of fractional digits (keeping microseconds), so
    Purview's 7-digit times need no trimming.
    """
    if not value:
        return None
    try:
        when = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
