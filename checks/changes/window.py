"""Which stretch of time a diagnosis asks "what changed" about, from the scans' own runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from checks.catalogue.scan_history import history
from checks.gateways.api import Json
from checks.gateways.monitor import RETENTION_MARGIN_S
from checks.times import parse_time

RETENTION = timedelta(days=90)
"""The Activity Log keeps 90 days: https://learn.microsoft.com/en-us/azure/azure-monitor/essentials/activity-log"""
BEFORE_FIRST_FAILURE = timedelta(days=7)


@dataclass(frozen=True)
class Span:
    """One scan's stretch where a change can have broken it: after its last success, before its first
    failure of the current streak (either end may be unknown)."""

    scan: str
    last_success: datetime | None
    first_failure: datetime | None

    def contains(self, when: datetime) -> bool:
        if self.first_failure is None or when >= self.first_failure:
            return False
        floor = self.last_success or self.first_failure - BEFORE_FIRST_FAILURE
        return when > floor


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    spans: tuple[Span, ...] = ()
    capped: bool = False
    """The start was moved to the Activity Log's retention (90 days)."""

    def span(self, scan: str | None) -> Span | None:
        """The scan's span; for a finding about no one scan, the failing span that began first."""
        failing = [s for s in self.spans if s.first_failure is not None]
        if scan is not None:
            return next((s for s in failing if s.scan == scan), None)
        return min(failing, key=lambda s: s.first_failure or self.end, default=None)


def _span(scan: str, runs: list[Json]) -> Span:
    h = history(runs)
    success = parse_time(h.last_success.get("endTime")) if h.last_success else None
    failing = h.failing_since
    first = parse_time(failing.get("startTime") or failing.get("endTime")) if failing else None
    return Span(scan=scan, last_success=success, first_failure=first)


def _start(span: Span, now: datetime) -> datetime:
    """Last success, or 7 days before the first failure, whichever is later; 7 days when nothing ran."""
    candidates = [t for t in (span.last_success,) if t is not None]
    if span.first_failure is not None:
        candidates.append(span.first_failure - BEFORE_FIRST_FAILURE)
    return max(candidates) if candidates else now - BEFORE_FIRST_FAILURE


def window(runs_by_scan: dict[str, list[Json]], now: datetime, *, days: int | None = None) -> Window:
    """The earliest start any scan needs (or `days` back when a person asked for it) up to now."""
    spans = tuple(_span(scan, runs) for scan, runs in runs_by_scan.items())
    if days is not None:
        start = now - timedelta(days=days)
    else:
        start = min((_start(s, now) for s in spans), default=now - BEFORE_FIRST_FAILURE)
    floor = now - RETENTION + timedelta(seconds=RETENTION_MARGIN_S)  # never past the service's 90 days
    return Window(start=max(start, floor), end=now, spans=spans, capped=start < floor)
