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
    # an hour inside the 90 days: the service refuses an older start, and its clock is read after ours
    assert capped.capped and capped.start == WRITTEN - timedelta(days=90) + timedelta(hours=1)
    assert window(never, WRITTEN, days=14).start == WRITTEN - timedelta(days=14)
    assert window({}, WRITTEN).start == WRITTEN - timedelta(days=7)


def test_a_scan_that_never_ran_reads_seven_days_and_has_no_span_to_trigger() -> None:
    win = window({"weekly": []}, WRITTEN)
    assert win.start == WRITTEN - timedelta(days=7) and not win.capped
    [span] = win.spans
    assert span.first_failure is None and not span.contains(WRITTEN - timedelta(days=1))
    assert win.span(None) is None and win.span("weekly") is None


def test_a_change_at_the_last_success_or_at_the_first_failure_is_outside_the_span() -> None:
    runs = {
        "weekly": [scan_run("Failed", "2026-11-27T00:00:00Z"), scan_run("Succeeded", "2026-11-25T00:00:00Z")]
    }
    [span] = window(runs, WRITTEN).spans
    assert span.last_success is not None and span.first_failure is not None
    assert not span.contains(span.last_success) and not span.contains(span.first_failure)
    assert span.contains(span.first_failure - timedelta(seconds=1))


def test_never_succeeded_starts_seven_days_before_the_first_failure_and_the_span_too() -> None:
    runs = {
        "weekly": [scan_run("Failed", "2026-11-27T00:00:00Z"), scan_run("Failed", "2026-11-26T00:00:00Z")]
    }
    win = window(runs, WRITTEN)
    assert win.start.isoformat() == "2026-11-19T00:00:00+00:00" and not win.capped
    [span] = win.spans
    assert span.last_success is None and span.first_failure is not None
    assert span.first_failure.isoformat() == "2026-11-26T00:00:00+00:00"  # the streak's first, not the last
    assert span.contains(span.first_failure - timedelta(days=6))
    assert not span.contains(span.first_failure - timedelta(days=8))
