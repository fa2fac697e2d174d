"""The window: from the last success (or 7 days before the first failure, whichever is later) to now,
never further back than the Activity Log's 90 days; `changes SOURCE 14d` asks for its own length."""

from __future__ import annotations

from datetime import timedelta

from checks.changes.window import window
from tests.changes.conftest import WRITTEN
from tests.checks.worlds import scan_run


def test_the_last_success_starts_it_when_it_is_later() -> None:
    runs = {
        "weekly": [scan_run("Failed", "2026-11-27T00:00:00Z"), scan_run("Succeeded", "2026-11-25T00:00:00Z")]
    }
    win = window(runs, WRITTEN)
    assert win.start.isoformat() == "2026-11-25T00:00:00+00:00" and win.end == WRITTEN
    [span] = win.spans
    assert span.contains(WRITTEN - timedelta(days=2)) and not span.contains(WRITTEN - timedelta(hours=1))


def test_seven_days_before_the_first_failure_when_the_success_is_older() -> None:
    runs = {
        "weekly": [scan_run("Failed", "2026-11-20T00:00:00Z"), scan_run("Succeeded", "2026-10-01T00:00:00Z")]
    }
    assert window(runs, WRITTEN).start.isoformat().startswith("2026-11-13")


def test_capped_at_ninety_days_and_a_person_may_ask_for_a_length() -> None:
    never = {"weekly": [scan_run("Failed", "2026-05-01T00:00:00Z")]}
    capped = window(never, WRITTEN)
    assert capped.capped and capped.start == WRITTEN - timedelta(days=90)
    assert window(never, WRITTEN, days=14).start == WRITTEN - timedelta(days=14)
    assert window({}, WRITTEN).start == WRITTEN - timedelta(days=7)
