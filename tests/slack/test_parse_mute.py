"""`/purview-check mute SOURCE [ACCOUNT] DURATION` and `unmute SOURCE [ACCOUNT]`, parsed strictly."""

from __future__ import annotations

import pytest

from handlers.slack.parse import MuteSource, UnmuteSource, UsageError, parse_command


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mute sales-adls 4h", MuteSource("sales-adls", 4 * 3600)),
        ("mute sales-adls contoso-pv 30m", MuteSource("sales-adls", 1800, "contoso-pv")),
        ('MUTE "finance sql" 2D', MuteSource("finance sql", 2 * 86400)),
        ("mute x 30d", MuteSource("x", 30 * 86400)),
        ("unmute sales-adls", UnmuteSource("sales-adls")),
        ("unmute sales-adls contoso-pv", UnmuteSource("sales-adls", "contoso-pv")),
    ],
)
def test_mute_and_unmute(text: str, expected: object) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("mute", "needs a SOURCE and a DURATION"),
        ("mute sales-adls", "needs a SOURCE and a DURATION"),
        ("mute sales-adls four-hours", "is not a duration"),
        ("mute sales-adls 4w", "is not a duration"),
        ("mute sales-adls 0h", "from 1 minute to 30 days"),
        ("mute sales-adls 31d", "from 1 minute to 30 days"),
        ("mute a b c 4h", "needs a SOURCE and a DURATION"),
        ("mute sales-adls --for 4h", "takes no option"),
        ("unmute", "needs a SOURCE"),
        ("unmute a b c", "needs a SOURCE"),
    ],
)
def test_mute_usage_errors(text: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        parse_command(text)


def test_a_source_named_mute_is_still_checked_with_check() -> None:
    assert parse_command("check mute").source == "mute"  # type: ignore[union-attr]
