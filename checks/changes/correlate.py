"""Put the changes next to the findings they explain: a *likely trigger* is a change that removed or
narrowed what a failing (or warning) check needs, made after the scan's last success and before its first
failure. The rest is the timeline, newest first."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime, timedelta

from checks.changes.collect import ChangeSet
from checks.changes.record import UNKNOWN, Change
from checks.changes.window import Span
from checks.model import Finding, Status

log = logging.getLogger(__name__)

_EXPLAINED = (Status.FAIL, Status.WARN)


def span_text(delta: timedelta) -> str:
    """`8 h`, `2 d`, `35 min`: how far apart, for a person."""
    seconds = abs(delta.total_seconds())
    if seconds >= 2 * 86400:
        return f"{round(seconds / 86400)} d"
    if seconds >= 3600:
        return f"{round(seconds / 3600)} h"
    return f"{max(1, round(seconds / 60))} min"


def relation(at: datetime | None, span: Span | None) -> str | None:
    if at is None or span is None or span.first_failure is None:
        return None
    delta = span.first_failure - at
    side = "before" if delta.total_seconds() > 0 else "after"
    return f"{span_text(delta)} {side} the first failed run"


def _trigger(change: Change, changes: ChangeSet, findings: list[Finding]) -> Change | None:
    checks = changes.narrows.get(change.key, ())
    if not checks or change.at is None or change.attempted:
        return None
    ranked = sorted(
        (f for f in findings if f.check in checks and f.status in _EXPLAINED),
        key=lambda f: -(f.status.severity or 0),
    )
    for finding in ranked:
        span = changes.window.span(finding.scan)
        if span is not None and (change.scan in (None, span.scan)) and span.contains(change.at):
            return replace(
                change,
                likely_trigger=True,
                finding=finding.check,
                scan=span.scan,
                reason=f"explains {finding.check}: {finding.title}",
                relation=relation(change.at, span),
            )
    return None


def correlate(changes: ChangeSet, findings: list[Finding]) -> list[Change]:
    """Likely triggers first (oldest first: the story's order), then refused reads, then the rest
    newest first, each with its distance to the first failed run."""
    triggers: list[Change] = []
    rest: list[Change] = []
    unknown: list[Change] = []
    first_span = changes.window.span(None)
    for change in changes.changes:
        if change.kind == UNKNOWN:
            unknown.append(change)
        elif (marked := _trigger(change, changes, findings)) is not None:
            triggers.append(marked)
        else:
            rest.append(replace(change, relation=relation(change.at, first_span)))
    triggers.sort(key=lambda c: c.at or changes.window.end)
    rest.sort(key=lambda c: c.at or changes.window.end, reverse=True)
    return triggers + unknown + rest


async def finish(task: asyncio.Future[ChangeSet], findings: list[Finding], timeout_s: float) -> list[Change]:
    """The correlated changes once the reads are done; reads not done by the deadline are one
    `unknown` line (the report never waits past its own deadline nor fails for them)."""
    try:
        async with asyncio.timeout(timeout_s):
            changes = await asyncio.shield(task)
    except TimeoutError:
        task.cancel()
        return [Change(kind=UNKNOWN, status="Unknown", summary="the Activity Log did not answer in time")]
    except Exception as error:  # the timeline is a nicety: never a failed report
        log.exception("reading what changed failed")
        return [Change(kind=UNKNOWN, status="Unknown", summary=f"could not read what changed: {error!r}")]
    return correlate(changes, findings)
