"""Evidence beats inference: a scan's own runs overrule a cause the checks inferred.

A check that says `fail` claims "this stops the scan now". When the scan's newest finished run succeeded
after the cause came into being, that claim is contradicted: access was granted somewhere the bot cannot
see (ADLS ACLs, SQL contained users, a network path it cannot read), or the guide's requirement does not
hold on this setup. Such a finding becomes `warn`, saying which run contradicts it.

Applied once, to every check's findings, by `checks.diagnose` — so no check can forget it. A finding
keeps its `fail` when its evidence shows the cause is newer than the success:
- `causeSince` (ISO 8601): when the failing state came into being (a secret version's `updated`, a
  runtime's last contact), later than the success's end;
- `blocksEveryRun: true`: a state read directly that no run can get past (a credential's secret that does
  not exist, a disabled version), so a success can only predate it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime

from checks.catalogue import scan_history
from checks.gateways.api import Json
from checks.model import Finding, Status
from checks.times import parse_time

CAUSE_SINCE = "causeSince"
BLOCKS_EVERY_RUN = "blocksEveryRun"
CONTRADICTED_BY = "contradictedBy"


def newest_success(runs: Sequence[Json]) -> tuple[Json, datetime] | None:
    """The scan's newest finished run with its end, when that run succeeded; else None."""
    last = scan_history.history(list(runs)).last
    if last is None or str(last.get("status") or "").lower() != "succeeded":
        return None
    ended = parse_time(last.get("endTime"))
    return (last, ended) if ended is not None else None


def _contradiction(finding: Finding, runs: Sequence[Json]) -> Json | None:
    success = newest_success(runs)
    if success is None:
        return None
    run, ended = success
    if finding.evidence.get(BLOCKS_EVERY_RUN) is True:
        return None
    since = parse_time(finding.evidence.get(CAUSE_SINCE))
    if since is not None and since > ended:
        return None
    return {"runId": run.get("id"), "endTime": run.get("endTime")}


def overrule(findings: Sequence[Finding], runs_by_scan: Mapping[str, Sequence[Json]]) -> list[Finding]:
    """`findings` with every `fail` that the runs contradict turned into `warn`.

    A finding about one scan is judged by that scan's runs; one about no scan in particular (an
    account-level or multi-source cause) by every scan's, and only when all of them contradict it.
    Scan history's own verdicts are the runs themselves and stay as they are.
    """
    out: list[Finding] = []
    for finding in findings:
        if finding.status is not Status.FAIL or finding.check == scan_history.META.id:
            out.append(finding)
            continue
        scans = [finding.scan] if finding.scan is not None else list(runs_by_scan)
        contradictions = {s: _contradiction(finding, runs_by_scan.get(s, ())) for s in scans}
        if not scans or any(c is None for c in contradictions.values()):
            out.append(finding)
            continue
        out.append(_downgraded(finding, contradictions))
    return out


def _downgraded(finding: Finding, contradictions: Mapping[str, Json | None]) -> Finding:
    scans = ", ".join(contradictions)
    ended = ", ".join(str((c or {}).get("endTime")) for c in contradictions.values())
    noun = "scan" if len(contradictions) == 1 else "scans"
    sentence = (
        f"Not confirmed: the newest run of {noun} {scans} succeeded (ended {ended}), which contradicts "
        "this. Either the scan gets through some way the bot cannot see, or this changed after that run: "
        "run the scan again to be sure."
    )
    detail = f"{sentence}\n{finding.detail}" if finding.detail else sentence
    evidence = {**finding.evidence, CONTRADICTED_BY: dict(contradictions)}
    return dataclasses.replace(finding, status=Status.WARN, detail=detail, evidence=evidence)
