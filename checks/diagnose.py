"""Run every check of the catalogue concurrently over one shared `Facts`, under one deadline."""

from __future__ import annotations

import asyncio
import difflib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from checks.catalogue import scan_history
from checks.changes.collect import read_changes
from checks.changes.correlate import finish
from checks.check import Check, CheckMeta
from checks.classify import classify_run
from checks.errors import CallTimeoutError, GatewayError, NotFoundError
from checks.facts import Facts
from checks.gateways.api import Json
from checks.model import Finding, LastRun, Report, ScanSummary, SourceSummary, Status
from checks.run_evidence import overrule
from checks.runtimes import scan_runtime_name
from checks.target import Target

log = logging.getLogger(__name__)


class NameNotFoundError(Exception):
    """A data source or scan name Purview does not have; carries the closest names it does have."""

    def __init__(self, what: str, name: str, suggestions: list[str]) -> None:
        self.what = what
        self.name = name
        self.suggestions = suggestions
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"No {what} named '{name}'.{hint}")


def closest(name: str, names: Sequence[str], limit: int = 5) -> list[str]:
    """Close spellings first, then names that contain what was typed."""
    lowered = {n.lower(): n for n in names}
    close = [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=limit, cutoff=0.5)]
    contains = [n for n in names if name.lower() in n.lower() and n not in close]
    return (close + contains)[:limit]


async def load_source(facts: Facts, name: str) -> Json:
    try:
        return await facts.data_source(name)
    except NotFoundError:
        names = [str(ds.get("name", "")) for ds in await facts.data_sources()]
        raise NameNotFoundError("data source", name, closest(name, names)) from None


def select_scans(scans: list[Json], scan_name: str | None) -> list[Json]:
    if scan_name is None:
        return scans
    chosen = [s for s in scans if str(s.get("name", "")).lower() == scan_name.lower()]
    if not chosen:
        raise NameNotFoundError(
            "scan", scan_name, closest(scan_name, [str(s.get("name", "")) for s in scans])
        )
    return chosen


async def diagnose(
    facts: Facts,
    source_name: str,
    *,
    checks: Sequence[Check],
    docs_base: str,
    scan_name: str | None = None,
    deadline_s: float = 60.0,
    now: datetime | None = None,
    requester_upn: str | None = None,
    what_changed: bool = True,
    changes_days: int | None = None,
) -> Report:
    """One report for one data source. Raises NameNotFoundError for a name Purview does not have.

    Lookups still running when it returns (or is cancelled) are cancelled: nobody will read them.
    """
    try:
        return await _diagnose(
            facts,
            source_name,
            checks,
            docs_base,
            scan_name,
            deadline_s,
            now,
            requester_upn,
            what_changed,
            changes_days,
        )
    finally:
        facts.close()


async def _diagnose(
    facts: Facts,
    source_name: str,
    checks: Sequence[Check],
    docs_base: str,
    scan_name: str | None,
    deadline_s: float,
    now: datetime | None,
    requester_upn: str | None,
    what_changed: bool = True,
    changes_days: int | None = None,
) -> Report:
    started_at = datetime.now(UTC)
    t0 = time.monotonic()

    def remaining() -> float:
        return max(0.1, deadline_s - (time.monotonic() - t0))

    # Most checks need the account's identity: start that chain now, beside the source's.
    account = asyncio.ensure_future(facts.account())
    account.add_done_callback(_consume)
    try:
        async with asyncio.timeout(remaining()):
            source = await load_source(facts, source_name)
            scans = select_scans(await facts.scans(source_name), scan_name)
    except GatewayError as error:
        return _unreadable_source(facts, source_name, error, started_at, t0, docs_base)
    except TimeoutError:
        late = CallTimeoutError(f"read data source {source_name} and its scans from Purview", deadline_s)
        return _unreadable_source(facts, source_name, late, started_at, t0, docs_base)
    for scan in scans:  # every check reads the runs: fetch them beside the checks' first lookups
        asyncio.ensure_future(facts.runs(source_name, str(scan.get("name")))).add_done_callback(_consume)
    target = Target(
        facts=facts, source=source, scans=scans, now=now or started_at, requester_upn=requester_upn
    )
    # what changed (issue 11): its reads start beside the checks' first reads, and never fail the report
    changed = asyncio.ensure_future(read_changes(target, days=changes_days)) if what_changed else None
    findings = await run_checks(target, checks, remaining())
    runs = await _runs_by_scan(facts, source_name, scans, remaining())
    findings = overrule(findings, runs)
    changes = await finish(changed, findings, remaining()) if changed is not None else []
    return Report(
        account=facts.account_name,
        source=_source_summary(source),
        scans=[_scan_summary(scan, runs[str(scan.get("name", ""))]) for scan in scans],
        findings=findings,
        started_at=started_at,
        elapsed_ms=int((time.monotonic() - t0) * 1000),
        docs_base=docs_base,
        changes=changes,
    )


async def run_checks(target: Target, checks: Sequence[Check], timeout_s: float) -> list[Finding]:
    """Concurrent checks; what raises or is not done by the deadline becomes `unknown`, never a crash."""
    tasks = {asyncio.ensure_future(check.run(target)): check for check in checks}
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        task.cancel()
    findings: list[Finding] = []
    for task, check in tasks.items():  # catalogue order, whatever order they finished in
        if task in pending:
            findings.append(
                check.meta.finding(
                    Status.UNKNOWN,
                    f"{check.meta.title}: timed out",
                    detail=f"not finished within the {timeout_s:.0f} s deadline of this diagnosis",
                    evidence={"timeoutSeconds": round(timeout_s, 1)},
                )
            )
        elif (error := task.exception()) is not None:
            findings.append(_crashed(check.meta, error))
        else:
            findings.extend(task.result())
    return findings


def _crashed(meta: CheckMeta, error: BaseException) -> Finding:
    if isinstance(error, GatewayError):
        return meta.unknown(f"{meta.title}: could not find out", error)
    log.error("check %s raised", meta.id, exc_info=error)
    return meta.finding(
        Status.UNKNOWN,
        f"{meta.title}: internal error",
        detail=f"the check raised {type(error).__name__}: {error}",
        evidence={"exception": type(error).__name__},
    )


async def _runs_by_scan(
    facts: Facts, source_name: str, scans: list[Json], timeout_s: float
) -> dict[str, list[Json]]:
    """Each scan's runs (read already by the checks; only a lookup still hanging at the deadline waits
    here); an unreadable list counts as no runs."""

    async def one(name: str) -> list[Json]:
        try:
            async with asyncio.timeout(timeout_s):
                return await facts.runs(source_name, name)
        except (GatewayError, TimeoutError):
            return []

    names = [str(scan.get("name", "")) for scan in scans]
    return dict(zip(names, await asyncio.gather(*(one(n) for n in names)), strict=True))


def _scan_summary(scan: Json, runs: list[Json]) -> ScanSummary:
    props = scan.get("properties") or {}
    return ScanSummary(
        name=str(scan.get("name", "")),
        kind=scan.get("kind"),
        integration_runtime=scan_runtime_name(scan),
        credential=((props.get("credential") or {}).get("referenceName")),
        last_run=_last_run(runs[0], scan) if runs else None,
    )


def _last_run(run: Json, scan: Json) -> LastRun:
    nested = run.get("error")
    error = run.get("errorMessage") or (nested.get("message") if isinstance(nested, dict) else None)
    classification = classify_run(run, scan) if error else None
    return LastRun(
        id=run.get("id"),
        status=run.get("status"),
        end_time=run.get("endTime"),
        error=error,
        section=classification.section if classification else None,
    )


def _source_summary(source: Json) -> SourceSummary:
    props = source.get("properties") or {}
    return SourceSummary(
        name=str(source.get("name", "")),
        kind=source.get("kind"),
        resource_id=props.get("resourceId"),
        collection=(props.get("collection") or {}).get("referenceName"),
    )


def _unreadable_source(
    facts: Facts, name: str, error: GatewayError, started_at: datetime, t0: float, docs_base: str
) -> Report:
    """Purview itself did not answer: still a report, with the reason, rather than a traceback."""
    facts.close()
    title = f"Could not read data source {name} from Purview account {facts.account_name}"
    finding = scan_history.META.unknown(title, error)
    return Report(
        account=facts.account_name,
        source=SourceSummary(name=name, kind=None, resource_id=None, collection=None),
        scans=[],
        findings=[finding],
        started_at=started_at,
        elapsed_ms=int((time.monotonic() - t0) * 1000),
        docs_base=docs_base,
    )


def _consume(task: asyncio.Future[Any]) -> None:
    """Prefetches are awaited again by the checks; here only keep asyncio from warning."""
    if not task.cancelled():
        task.exception()
