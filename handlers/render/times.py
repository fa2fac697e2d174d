"""Times as the bot's messages show them: each reader's local time where Slack can render it
(`<!date^…>`), UTC text everywhere else (fallbacks, notifications, plain text)."""

from __future__ import annotations

from datetime import UTC, datetime

from checks.times import parse_time


def utc_text(when: datetime, now: datetime | None = None) -> str:
    """`08:14 UTC` on `now`'s day (UTC), else `2026-11-27 08:14 UTC`."""
    at = when.astimezone(UTC)
    same_day = now is not None and now.astimezone(UTC).date() == at.date()
    return at.strftime("%H:%M UTC" if same_day else "%Y-%m-%d %H:%M UTC")


def slack_date(when: datetime, now: datetime | None = None) -> str:
    """mrkdwn that Slack shows in the reader's time zone ("Nov 27 at 2:04 PM", "Yesterday at …"), with
    the UTC text as the fallback for clients that cannot (https://api.slack.com/reference/surfaces/formatting#date-formatting)."""
    epoch = int(when.timestamp())
    return f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{utc_text(when, now)}>"


def wire_date(value: object, now: datetime | None = None) -> str | None:
    """A wire timestamp (`2026-11-27T14:04:40.1187265Z`) as `slack_date`; None when unreadable."""
    when = parse_time(value)
    return None if when is None else slack_date(when, now)
