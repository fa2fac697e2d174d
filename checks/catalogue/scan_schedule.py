"""Scans that quietly stopped: a disabled or ended schedule, a schedule Purview stopped keeping, a run stuck
in the queue behind a busy runtime (issue 12, guide section "Scans no longer run").

Read: each scan's trigger, `GET …/datasources/{ds}/scans/{scan}/triggers/default` (api-version 2023-09-01:
`properties.{state, recurrence{frequency, interval, startTime, endTime}, lastScheduled, lastModifiedAt}`;
404 = the scan has no schedule), its runs (already read for every check), and for a self-hosted runtime its
status (already read by integration-runtime). Purview documents no path for a runtime's monitoring data
(`queueLength`, `concurrentJobsRunning` appear only in an example of the scanning spec), so saturation is read
from the status's nodes (`concurrentJobsLimit` / `maxConcurrentJobs`, and `concurrentJobsRunning` where the
service sends it) and said to be unverified otherwise.
https://learn.microsoft.com/en-us/rest/api/purview/scanningdataplane/triggers/get

Verdicts: a schedule whose trigger says Enabled, with no run started or ended, nothing scheduled, and no
(re)start or change of the trigger for more than twice its interval is `fail` (Purview is not running the
scan; `causeSince` is the moment it became overdue, so an older success does not overrule it). The same
with the runs unreadable, or no Enabled state on the trigger, is only `warn`: the bot cannot see enough. A
startTime without offset in a named time zone is read as anything within 14 h of it. A disabled or ended
schedule is `warn` (it may be on purpose); a run queued more than 2 h, or in progress more than 24 h, is
`warn`, naming the runtime's load when the status shows it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from checks import sections
from checks.check import Check, CheckMeta
from checks.errors import GatewayError, NotFoundError
from checks.gateways.api import Json
from checks.model import Finding, Status
from checks.runtimes import scan_runtime_name
from checks.target import Target
from checks.times import parse_time

META = CheckMeta(
    id="scan-schedule",
    title="Scan schedule and stuck runs",
    sections=(sections.SCANS_NO_LONGER_RUN,),
    description=(
        "Each scan's trigger: disabled or ended (warn), enabled but not run for more than twice its interval "
        "(fail); a run queued for more than 2 h or in progress for more than 24 h (warn), with the "
        "self-hosted runtime's concurrent jobs against its limit."
    ),
)
T = TypeVar("T")
_TRIGGER_DOC = "https://learn.microsoft.com/en-us/rest/api/purview/scanningdataplane/triggers/get"
_UNITS = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "month": timedelta(days=31),  # the longest month: never call a monthly scan late too early
}
_QUEUED = {"queued", "accepted", "notstarted", "delayed", "throttled", "waiting"}
_RUNNING = {"inprogress", "running"}
QUEUED_TOO_LONG = timedelta(hours=2)
RUNNING_TOO_LONG = timedelta(hours=24)
PORTAL = "https://web.purview.azure.com"


def period(recurrence: Json) -> timedelta | None:
    """The schedule's interval (`interval` × `frequency`), None when it does not say."""
    unit = _UNITS.get(str(recurrence.get("frequency") or "").strip().lower())
    try:
        count = int(recurrence.get("interval") or 1)
    except (TypeError, ValueError):
        return None
    return unit * max(count, 1) if unit else None


def _ago(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _edit_step(ds: str, scan: str, what: str) -> str:
    return (
        f"Purview portal ({PORTAL}) > Data map > Data sources > {ds} > scan {scan} > Edit scan > "
        f"Set a scan trigger: {what}."
    )


# The widest UTC offsets (UTC-12 … UTC+14): a startTime without an offset, read in a named time zone the bot
# does not convert (Windows zone names), may lie this far either side of the same wall-clock time in UTC.
_TZ_SLACK = timedelta(hours=14)
_UTC_ZONES = {"", "utc", "z", "gmt", "coordinated universal time", "etc/utc", "utc+00:00"}
_HAS_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)


def start_window(recurrence: Json) -> tuple[datetime, datetime] | None:
    """(earliest, latest) moment the recurrence's `startTime` can mean in UTC; None without one.

    A startTime with `Z` or an offset is exact. One without, in a non-UTC `timeZone`, is wall-clock time
    in that zone, which the bot does not convert: it may be up to 14 h either way.
    https://learn.microsoft.com/en-us/rest/api/purview/scanningdataplane/triggers/get (Recurrence)
    """
    raw = str(recurrence.get("startTime") or "").strip()
    start = parse_time(raw)
    if start is None:
        return None
    zone = str(recurrence.get("timeZone") or "").strip().lower()
    if _HAS_OFFSET.search(raw) or zone in _UTC_ZONES:
        return start, start
    return start - _TZ_SLACK, start + _TZ_SLACK


def last_activity(runs: list[Json]) -> datetime | None:
    """The latest start or end of any run: Purview schedules no run while one is still going, and the next
    scheduled one comes after the last one ended, so a long run is no missed schedule."""
    moments = (
        t for r in runs for key in ("startTime", "endTime", "queuedTime") if (t := parse_time(r.get(key)))
    )
    return max(moments, default=None)


def _schedule(
    target: Target, scan: str, trigger: Json, runs: list[Json], runs_error: GatewayError | None = None
) -> Finding:
    props = trigger.get("properties") or {}
    rec = props.get("recurrence") or {}
    every = period(rec)
    state = str(props.get("state") or "").strip()
    ds = target.source_name
    newest = last_activity(runs)
    window = start_window(rec)
    # every moment from which the schedule counts afresh: the newest run, the last time Purview scheduled
    # one, the schedule's start (its latest reading) and the trigger's creation / last change
    anchors = [
        newest,
        parse_time(props.get("lastScheduled")),
        window[1] if window else None,
        parse_time(props.get("lastModifiedAt")),
        parse_time(props.get("createdAt")),
    ]
    ev: dict[str, Any] = {
        "trigger": {
            "state": state or None,
            "frequency": rec.get("frequency"),
            "interval": rec.get("interval"),
            "startTime": rec.get("startTime"),
            "endTime": rec.get("endTime"),
            "timeZone": rec.get("timeZone"),
            "lastScheduled": props.get("lastScheduled"),
            "createdAt": props.get("createdAt"),
            "lastModifiedAt": props.get("lastModifiedAt"),
        },
        "lastRunActivity": _iso(newest),
        "docs": _TRIGGER_DOC,
    }
    if runs_error is not None:
        ev["runsError"] = runs_error.as_evidence()
    if state.lower() == "disabled":
        return META.finding(
            Status.WARN,
            f"Scan {scan}'s schedule is disabled: it runs only when started by hand",
            detail=(
                f"The trigger of scan {ds}/{scan} has state Disabled (last modified "
                f"{props.get('lastModifiedAt') or 'at an unknown time'}); its runs' latest activity: "
                f"{_iso(newest) or 'none'}. If the pause is not intended, enable the schedule."
            ),
            fix=[_edit_step(ds, scan, "Recurring, and save to enable the schedule again")],
            evidence={**ev, "causeSince": props.get("lastModifiedAt")},
            scan=scan,
        )
    end = parse_time(rec.get("endTime"))
    if end is not None and end < target.now:
        return META.finding(
            Status.WARN,
            f"Scan {scan}'s schedule ended on {_iso(end)}",
            detail=(
                f"The recurrence of scan {ds}/{scan} has endTime {_iso(end)}: Purview schedules no more runs."
            ),
            fix=[_edit_step(ds, scan, "Recurring with a later end date, or none")],
            evidence=ev,
            scan=scan,
        )
    every_text = f"every {rec.get('interval') or 1} {rec.get('frequency')}"
    if every is None:
        return META.finding(
            Status.PASS,
            f"Scan {scan} has an enabled schedule",
            detail=f"Its recurrence names no interval the bot can read ({rec.get('frequency')!r}).",
            evidence=ev,
            scan=scan,
        )
    if window is not None and window[1] > target.now:
        return META.finding(
            Status.PASS,
            f"Scan {scan} is scheduled {every_text}",
            detail=f"Its schedule starts {rec.get('startTime')} (time zone {rec.get('timeZone') or 'UTC'}).",
            evidence=ev,
            scan=scan,
        )
    since = max((t for t in anchors if t is not None), default=None)
    if since is None:
        return META.finding(
            Status.PASS,
            f"Scan {scan} is scheduled {every_text}",
            detail="Its trigger names no start time and the scan has no run yet.",
            evidence=ev,
            scan=scan,
        )
    going = next((r for r in runs if _status(r) in _QUEUED | _RUNNING), None)
    if going is not None:  # no scheduled run starts while one is queued or in progress
        return META.finding(
            Status.PASS,
            f"Scan {scan} is scheduled {every_text}; a run is {going.get('status')}",
            detail=f"Run {going.get('id')} is {going.get('status')}: the next scheduled run waits for it.",
            evidence=ev,
            scan=scan,
        )
    late = target.now - since
    if late <= 2 * every:
        return META.finding(
            Status.PASS,
            f"Scan {scan} runs on schedule ({every_text})",
            detail=f"The trigger is enabled and the schedule's latest activity was at {_iso(since)}.",
            evidence=ev,
            scan=scan,
        )
    overdue = since + 2 * every
    missed = int(late / every)
    steps = [
        _edit_step(ds, scan, "Recurring, then save (re-creates the schedule)"),
        f"Purview portal ({PORTAL}) > Data map > Data sources > {ds} > scan {scan} > Run scan now, "
        "and watch that run's status.",
    ]
    title = f"Scan {scan} is scheduled {every_text} but has not run for {_ago(late)}"
    if runs_error is not None or state.lower() != "enabled":
        # what the bot could not see (the runs, or whether the trigger is on) keeps this a warning
        why = (
            f"the bot could not read the scan's runs ({runs_error.reason}), so a recent run may be missing"
            if runs_error is not None
            else f"the trigger states no Enabled state ({state or 'none'})"
        )
        return META.finding(
            Status.WARN,
            f"{title}, as far as the bot can see",
            detail=(
                f"The trigger of scan {ds}/{scan} names no run or scheduling since {_iso(since)}, but {why}."
            ),
            fix=steps,
            evidence={**ev, "overdueSince": _iso(overdue)},
            scan=scan,
        )
    return META.finding(
        Status.FAIL,
        title,
        detail=(
            f"The trigger of scan {ds}/{scan} is enabled ({every_text}), yet no run started, ended or was "
            f"scheduled since {_iso(since)}: about {missed} scheduled runs are missing. Purview stopped "
            "scheduling it; saving the trigger again re-creates the schedule, and a run started by hand "
            "shows whether the scan itself still works."
        ),
        fix=steps,
        evidence={**ev, "overdueSince": _iso(overdue), "causeSince": _iso(overdue)},
        scan=scan,
    )


def _status(run: Json) -> str:
    return str(run.get("status") or "").replace(" ", "").lower()


_NOT_TAKING_JOBS = {"offline", "needregistration", "initializefailed", "stopped"}


def load(status: Json) -> dict[str, Any]:
    """The runtime's nodes' concurrent jobs against their limit, as far as its status shows them.

    Saturated: every node that takes jobs (not offline) runs as many as its limit allows."""
    nodes = ((status.get("properties") or {}).get("typeProperties") or {}).get("nodes") or []
    out: list[dict[str, Any]] = []
    pairs: list[tuple[int, int]] = []
    active = 0
    for node in nodes if isinstance(nodes, list) else []:
        if not isinstance(node, dict):
            continue
        limit = node.get("concurrentJobsLimit") or node.get("maxConcurrentJobs")
        running = node.get("concurrentJobsRunning")
        out.append(
            {
                "nodeName": node.get("nodeName"),
                "status": node.get("status"),
                "concurrentJobsLimit": limit,
                "concurrentJobsRunning": running,
            }
        )
        if str(node.get("status") or "").lower() in _NOT_TAKING_JOBS:
            continue
        active += 1
        if isinstance(running, int) and isinstance(limit, int):
            pairs.append((running, limit))
    measured = bool(pairs) and len(pairs) == active
    saturated = measured and all(running >= limit for running, limit in pairs)
    return {"nodes": out, "saturated": saturated, "measured": measured}


async def _stuck(target: Target, scan_json: Json, runs: list[Json]) -> Finding | None:
    scan = str(scan_json.get("name", ""))
    unfinished = [r for r in runs if _status(r) in _QUEUED | _RUNNING]
    if not unfinished:
        return None
    run = unfinished[0]
    queued = _status(run) in _QUEUED
    began = parse_time(run.get("queuedTime")) or parse_time(run.get("startTime"))
    if began is None:
        return None
    waited = target.now - began
    if waited <= (QUEUED_TOO_LONG if queued else RUNNING_TOO_LONG):
        return None
    ir = scan_runtime_name(scan_json)
    ev: dict[str, Any] = {"run": {"id": run.get("id"), "status": run.get("status"), "since": _iso(began)}}
    busy = ""
    if ir is not None:
        try:
            status = await target.facts.integration_runtime_status(ir)
        except GatewayError as error:
            ev["runtimeStatusError"] = error.as_evidence()
        else:
            seen = load(status)
            ev["runtimeLoad"] = {
                **seen,
                "source": "integration runtime status (no documented monitoring API)",
            }
            if seen["saturated"]:
                busy = (
                    f" Every node of integration runtime {ir} that takes jobs runs as many as its "
                    "concurrentJobsLimit allows: runs wait until one finishes."
                )
            elif not seen["measured"]:
                busy = (
                    f" The status of integration runtime {ir} does not show its running jobs; look at its "
                    "concurrent jobs and queue in the portal (Data map > Integration runtimes)."
                )
    what = "queued" if queued else "in progress"
    fix = [
        f"Purview portal ({PORTAL}) > Data map > Monitoring > Scans: cancel run {run.get('id')} of scan "
        f"{scan} if it is stuck, and run the scan again.",
    ]
    if ir is not None:
        fix.append(
            f"Purview portal ({PORTAL}) > Data map > Integration runtimes > {ir}: raise the concurrent jobs "
            "limit of its nodes or add a node, when every node is busy."
        )
    return META.finding(
        Status.WARN,
        f"A run of scan {scan} has been {what} for {_ago(waited)}",
        detail=(
            f"Run {run.get('id')} of scan {target.source_name}/{scan} has been {run.get('status')} since "
            f"{_iso(began)}.{busy}"
        ),
        fix=fix,
        evidence=ev,
        scan=scan,
    )


async def _one(target: Target, scan_json: Json) -> list[Finding]:
    scan = str(scan_json.get("name", ""))
    trigger_read, runs_read = await asyncio.gather(
        _quietly(target.facts.scan_trigger(target.source_name, scan)),
        _quietly(target.facts.runs(target.source_name, scan)),
    )
    runs = runs_read if isinstance(runs_read, list) else []
    runs_error = runs_read if isinstance(runs_read, GatewayError) else None
    found: list[Finding] = []
    if isinstance(trigger_read, NotFoundError):
        found.append(
            META.skipped(
                f"Scan {scan} has no schedule",
                "It runs only when started by hand or by an API call.",
                scan=scan,
            )
        )
    elif isinstance(trigger_read, GatewayError):
        found.append(META.unknown(f"Could not read the schedule of scan {scan}", trigger_read, scan=scan))
    else:
        found.append(_schedule(target, scan, trigger_read, runs, runs_error))
    stuck = await _stuck(target, scan_json, runs)
    if stuck is not None:
        found.append(stuck)
    return found


async def _quietly(call: Awaitable[T]) -> T | GatewayError:
    try:
        return await call
    except GatewayError as error:
        return error


async def run(target: Target) -> list[Finding]:
    if not target.scans:
        return [META.skipped(f"{target.source_name} has no scans", "No schedule to check.")]
    per_scan = await asyncio.gather(*(_one(target, s) for s in target.scans))
    return [f for found in per_scan for f in found]


CHECK = Check(meta=META, run=run)
