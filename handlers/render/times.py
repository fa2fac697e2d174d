"""Times as the bot's messages show them: UTC, the date only when it is not today's."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_text(when: datetime, now: datetime | None = None) -> str:
    """`08:14 UTC` on `now`'s day (UTC), else `2026-11-27 08:14 UTC`."""
    at = when.astimezone(UTC)
    same_day = now is not None and now.astimezone(UTC).date() == at.date()
    return at.strftime("%H:%M UTC" if same_day else "%Y-%m-%d %H:%M UTC")
