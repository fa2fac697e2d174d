"""Context for every other check: how each scan's recent runs went, and what the failing run's error means.

Only finished runs decide (Queued / InProgress / Canceled runs say nothing about connectivity). A scan that
never finished a run gets `skipped`: there is nothing to explain, and "never ran" is not itself a failure.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from checks import sections
from checks.check import Check, CheckMeta
from checks.classify import UNKNOWN_IR, Classification, classify_run, error_text, runtime_kind
from checks.errors import GatewayError
from checks.gateways.api import Json
from checks.model import Finding, Status
from checks.runtimes import scan_runtime_name
from checks.target import Target

META = CheckMeta(
    id="scan-history",
    title="Scan run history",
    sections=(
        sections.SCANS_NO_LONGER_RUN,
        sections.SOURCE_ACCESS,
        sections.PRIVATE_LINK,
        sections.KEY_VAULT_ACCESS,
        sections.KEY_VAULT_SECRET,
    ),
    description=(
        "Latest runs of each scan: last status, failing since, last success; the failing run's error "
        "text classified to the guide section that most likely explains it."
    ),
)

_FAILED = {"failed"}
_PARTIAL = {"completedwithexceptions", "completewithwarning", "partialsucceeded"}
_SUCCEEDED = {"succeeded"}


@dataclass(frozen=True)
class History:
    """What the finished runs of one scan say, newest first."""

    last: Json | None  # newest finished run
    failing_since: Json | None  # oldest run of the current streak of failures
    failures: int  # length of that streak
    last_success: Json | None
    unfinished: int  # newer runs not finished (queued, running, canceled)


def _status(run: Json) -> str:
    return str(run.get("status") or "").replace(" ", "").lower()


def is_failed(run: Json) -> bool:
    """The run finished as `Failed` (not with exceptions, not canceled)."""
    return _status(run) in _FAILED


def _finished(run: Json) -> bool:
    return _status(run) in _FAILED | _PARTIAL | _SUCCEEDED


def _when(run: Json) -> datetime | None:
    for key in ("endTime", "startTime", "queuedTime"):
        value = run.get(key)
        if value:
            try:
                when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                continue
            return when if when.tzinfo else when.replace(tzinfo=UTC)  # naive = UTC, so all compare
    return None


def _newest_first(runs: list[Json]) -> list[Json]:
    """Runs sorted newest first by time; the API's order is kept for runs without a parseable time."""
    if all(_when(r) for r in runs):
        return sorted(runs, key=lambda r: _when(r) or datetime.min.replace(tzinfo=UTC), reverse=True)
    return list(runs)


def history(runs: list[Json]) -> History:
    ordered = _newest_first(runs)
    finished = [r for r in ordered if _finished(r)]
    unfinished = next((i for i, r in enumerate(ordered) if _finished(r)), len(ordered))
    streak: list[Json] = []
    for run in finished:
        if _status(run) not in _FAILED:
            break
        streak.append(run)
    return History(
        last=finished[0] if finished else None,
        failing_since=streak[-1] if streak else None,
        failures=len(streak),
        last_success=next((r for r in finished if _status(r) in _SUCCEEDED), None),
        unfinished=unfinished,
    )


def fmt_time(run: Json | None) -> str | None:
    """`2026-11-28 07:14 UTC` (the run's end, else start), None without a run."""
    when = _when(run) if run else None
    return when.strftime("%Y-%m-%d %H:%M UTC") if when else None


def _run_evidence(run: Json | None) -> dict[str, Any] | None:
    if run is None:
        return None
    keys = ("id", "status", "startTime", "endTime", "runType", "scanLevelType")
    return {k: run.get(k) for k in keys}


def _classification_evidence(c: Classification | None) -> dict[str, str] | None:
    if c is None:
        return None
    return {"section": c.section, "reason": c.reason, "matched": c.matched, "cause": c.cause}


def _iso(run: Json | None) -> str | None:
    """When a run started (else ended), ISO 8601 UTC: the start of a failing streak is `causeSince`."""
    if run is None:
        return None
    for key in ("startTime", "endTime", "queuedTime"):
        one = _when({key: run.get(key)})
        if one is not None:
            return one.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return None


def _status_of(last: Json) -> Status:
    status = _status(last)
    if status in _FAILED:
        return Status.FAIL
    return Status.WARN if status in _PARTIAL else Status.PASS


def _title(target: Target, scan: str, last: Json, status: Status, cls: Classification | None) -> str:
    where = f"Scan {scan} of {target.source_name}"
    when = fmt_time(last) or "an unknown time"
    if status is Status.PASS:
        return f"{where} succeeded at {when}"
    verb = "failed" if status is Status.FAIL else f"completed with exceptions ({last.get('status')})"
    cause = f": {cls.reason} ({cls.matched})" if cls else ""
    return f"{where} {verb} at {when}{cause}"


def _explained(cls: Classification) -> str:
    """Where the error is explained: the guide's section, or the Learn page of a section beyond the guide."""
    page = sections.PAGES.get(cls.section)
    if page is not None:
        return f"Most likely explained by '{sections.title(cls.section)}': {page}"
    return f"Most likely explained by the guide's section '{cls.section}'."


def _detail(h: History, text: str, cls: Classification | None) -> str:
    lines: list[str] = []
    if h.failures:
        runs = "1 failed run" if h.failures == 1 else f"{h.failures} failed runs in a row"
        lines.append(f"Failing since {fmt_time(h.failing_since)} ({runs}).")
    if h.last_success is not None:
        lines.append(f"Last success: {fmt_time(h.last_success)}.")
        if h.failures:
            lines.append("It used to run: see also 'Scans no longer run' (rotated credential, policy, SHIR).")
    elif h.failures:
        lines.append("No successful run in the history the API returned.")
    if h.unfinished:
        newer = "1 newer run is" if h.unfinished == 1 else f"{h.unfinished} newer runs are"
        lines.append(f"{newer} not finished yet (queued, running or canceled).")
    if text:
        lines.append(f"Error: {text}")
        lines.append(_explained(cls) if cls else "The error text matched no known pattern.")
    return "\n".join(lines)


def _scan_finding(
    target: Target, scan: str, runs: list[Json], scan_json: Json | None = None, runtime: Json | None = None
) -> Finding:
    h = history(runs)
    if h.last is None:
        return META.skipped(
            f"Scan {scan} of {target.source_name} has no finished run",
            f"{len(runs)} {'run' if len(runs) == 1 else 'runs'} in the history, none finished: nothing to "
            "classify yet.",
            scan=scan,
        )
    status = _status_of(h.last)
    text = error_text(h.last) if status is not Status.PASS else ""
    cls = classify_run(h.last, scan_json, runtime=runtime) if text else None
    section = cls.section if cls and status is not Status.PASS else sections.SCANS_NO_LONGER_RUN
    return META.finding(
        status,
        _title(target, scan, h.last, status, cls),
        section=section,
        detail=_detail(h, text, cls),
        evidence={
            "scan": scan,
            "lastRun": _run_evidence(h.last),
            "failingSince": fmt_time(h.failing_since),
            "consecutiveFailures": h.failures,
            "lastSuccess": _run_evidence(h.last_success),
            "runsConsidered": len(runs),
            "error": text or None,
            "classification": _classification_evidence(cls),
            "runtime": runtime_kind(scan_json, runtime),
            # the failing state began with the first failed run of the streak
            **({"causeSince": since} if status is Status.FAIL and (since := _iso(h.failing_since)) else {}),
        },
        scan=scan,
    )


async def _runtime(target: Target, scan: Json, runs: list[Json]) -> Json | None:
    """The scan's named runtime resource, read only when a failed run needs its kind (self-hosted or
    managed VNet) to read the error right and `connectedVia` does not say; memoised with the
    integration-runtime check's read. None when not needed or unreadable."""
    name = scan_runtime_name(scan)
    last = history(runs).last
    if name is None or last is None or _status(last) in _SUCCEEDED or runtime_kind(scan) != UNKNOWN_IR:
        return None
    try:
        return await target.facts.integration_runtime(name)
    except GatewayError:
        return None


async def _one(target: Target, scan_json: Json) -> Finding:
    scan = str(scan_json.get("name", ""))
    try:
        runs = await target.facts.runs(target.source_name, scan)
    except GatewayError as err:
        return META.unknown(
            f"Could not read the run history of scan {scan} of {target.source_name}",
            err,
            scan=scan,
        )
    return _scan_finding(target, scan, runs, scan_json, await _runtime(target, scan_json, runs))


async def run(target: Target) -> list[Finding]:
    if not target.scans:
        return [
            META.skipped(
                f"{target.source_name} has no scans",
                "The data source is registered but no scan is defined on it, so there is no run to explain.",
            )
        ]
    return list(await asyncio.gather(*(_one(target, s) for s in target.scans)))


CHECK = Check(meta=META, run=run)
