"""What changed between two runs of a diagnosis, and the Re-run button's value that makes it possible.

Slack keeps no state for us between a report and a click on its Re-run button, so the button's value
carries the request and the previous run's problems in compact form (at most 2000 characters). That
value comes back from Slack as untrusted input and is parsed strictly.

A new check (not a Re-run) compares with the last report of the source kept in the store
(`Report.to_json()`): `stored_finding_keys` reads that JSON into the same keys, and `changes_since`
compares over the scans both reports looked at.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from checks.model import Finding, Report, Status
from checks.times import parse_time

VALUE_LIMIT = 2000  # Slack's maximum for a button's value
NAME_LIMIT = 256
VERSION = 1
_KEYS = {"v", "s", "a", "c", "p", "t"}
BACKGROUND = frozenset({"scan-history"})
"""Checks that describe the scan's own runs: context for the others, never a problem that is "fixed" or
"new" (a Re-run after the fix must not call the old failed run a problem)."""

FindingKey = str
"""A problem's compact identity: `check|scan|status` (scan empty when the finding is about no scan)."""


@dataclass(frozen=True)
class Change:
    """One problem (check and scan) then and now: `before` None = new, `after` None = fixed, both set and
    different = one change of status (a fail that became a warn), equal = still there."""

    check: str
    scan: str | None
    before: Status | None
    after: Status | None


@dataclass(frozen=True)
class Changes:
    """Labels such as `source-access (weekly)`; `partial` when the previous problems were not all known.
    `items` holds the same comparison as data, for renderers that name the findings."""

    fixed: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    still: list[str] = field(default_factory=list)
    partial: bool = False
    since: datetime | None = None
    """When the compared report was made, if it came from the store ("since the last check at …")."""
    items: list[Change] = field(default_factory=list, compare=False)

    @property
    def changed(self) -> bool:
        return bool(self.fixed or self.new or any(i.before is not i.after for i in self.items))


@dataclass(frozen=True)
class RerunRequest:
    """A Re-run click: which diagnosis to run again, and the problems of the run it was shown under."""

    source: str
    account: str
    scan: str | None
    previous: list[FindingKey]
    truncated: bool = False


def finding_key(finding: Finding) -> FindingKey:
    return f"{finding.check}|{finding.scan or ''}|{finding.status.value}"


def finding_keys(report: Report) -> list[FindingKey]:
    """The report's problems (fail, warn, unknown), each once, in report order."""
    keys = (finding_key(f) for f in report.findings if f.status.is_problem)
    return list(dict.fromkeys(keys))


def split_key(key: FindingKey) -> tuple[str, str | None, Status]:
    """(check, scan, status); the scan, a name from Purview, may itself contain `|`."""
    check, _, rest = key.partition("|")
    scan, sep, status = rest.rpartition("|")
    if not check or not sep:
        raise ValueError(f"not a finding key: {key[:80]!r}")
    try:
        parsed = Status(status)
    except ValueError:
        raise ValueError(f"finding key {key[:80]!r}: unknown status {status[:20]!r}") from None
    if not parsed.is_problem:
        raise ValueError(f"finding key {key[:80]!r}: {parsed.value} is not a problem")
    return check, scan or None, parsed


def label(check: str, scan: str | None) -> str:
    """How a problem is named in a change line: `source-access (weekly)`, `key-vault-access`."""
    return f"{check} ({scan})" if scan else check


def compare(previous: Iterable[FindingKey], current: Report, *, partial: bool = False) -> Changes:
    """Problems fixed, new and still present since `previous`; a status change is noted in `still`.

    `partial`: the previous list was cut short, so a problem missing from it may not be new.
    """
    return compare_keys(previous, finding_keys(current), partial=partial)


def compare_keys(
    previous: Iterable[FindingKey],
    current: Iterable[FindingKey],
    *,
    partial: bool = False,
    since: datetime | None = None,
) -> Changes:
    """`compare` on two lists of finding keys (both valid: see `split_key`)."""
    before = _worst_by_problem(k for k in map(split_key, previous) if k[0] not in BACKGROUND)
    after = _worst_by_problem(k for k in map(split_key, current) if k[0] not in BACKGROUND)
    fixed = [label(*p) for p in before if p not in after]
    new = [label(*p) for p in after if p not in before]
    still = [_still(p, before[p], after[p]) for p in after if p in before]
    items = [Change(*p, before=before[p], after=after.get(p)) for p in before]
    items += [Change(*p, before=None, after=after[p]) for p in after if p not in before]
    return Changes(fixed=fixed, new=new, still=still, partial=partial, since=since, items=items)


def stored_finding_keys(report: Mapping[str, Any]) -> list[FindingKey]:
    """The problems of a report stored as JSON (`Report.to_json()`), as `finding_keys` gives them for the
    `Report`: `check|scan|status` of each fail, warn and unknown finding, once each, in report order.

    The JSON comes from the store and may have been written by another version: a finding that is not
    an object with a `check` name and a known problem status is skipped, never an error.
    """
    findings = report.get("findings")
    if not isinstance(findings, list):
        return []
    keys: list[FindingKey] = []
    for item in findings:
        if not isinstance(item, dict):
            continue
        check, scan, status = item.get("check"), item.get("scan"), item.get("status")
        if not isinstance(check, str) or not check or "|" in check or not isinstance(status, str):
            continue
        try:
            parsed = Status(status)
        except ValueError:
            continue
        if not parsed.is_problem:
            continue
        keys.append(f"{check}|{scan if isinstance(scan, str) else ''}|{parsed.value}")
    return list(dict.fromkeys(keys))


def stored_report_time(report: Mapping[str, Any]) -> datetime | None:
    """When a stored report was made (its `startedAt`), in UTC; None when missing or unreadable."""
    value = report.get("startedAt")
    if not isinstance(value, str):
        return None
    when = parse_time(value)
    return when.astimezone(UTC) if when is not None else None


def _stored_scans(report: Mapping[str, Any]) -> set[str]:
    scans = report.get("scans")
    if not isinstance(scans, list):
        return set()
    return {str(s["name"]) for s in scans if isinstance(s, dict) and isinstance(s.get("name"), str)}


def changes_since(previous: Mapping[str, Any], current: Report) -> Changes:
    """What changed since a stored report of the same source (`Report.to_json()`), dated by its time.

    Only the scans both reports looked at are compared (with the source-wide findings): a report narrowed
    to one scan (`--scan`) does not make the other scans' problems look fixed or new.
    """
    both = _stored_scans(previous) & {s.name for s in current.scans}

    def covered(keys: Iterable[FindingKey]) -> list[FindingKey]:
        return [k for k in keys if split_key(k)[1] in (None, *both)]

    return compare_keys(
        covered(stored_finding_keys(previous)),
        covered(finding_keys(current)),
        since=stored_report_time(previous),
    )


def _worst_by_problem(
    items: Iterable[tuple[str, str | None, Status]],
) -> dict[tuple[str, str | None], Status]:
    """Several findings of one check and scan (two policy states, say) count as one problem."""
    out: dict[tuple[str, str | None], Status] = {}
    for check, scan, status in items:
        known = out.get((check, scan))
        if known is None or (status.severity or 0) > (known.severity or 0):
            out[(check, scan)] = status
    return out


def _still(problem: tuple[str, str | None], before: Status, after: Status) -> str:
    name = label(*problem)
    return name if before is after else f"{name}: {before.value} → {after.value}"


def rerun_value(report: Report, *, scan: str | None = None) -> str:
    """The Re-run button's value: `{"v","s","a","c","p"[,"t"]}` in at most 2000 characters.

    Problem keys beyond the limit are dropped (last first) and `"t": 1` says so; raises ValueError
    only if the source and account names alone do not fit.
    """
    base: dict[str, Any] = {"v": VERSION, "s": report.source.name, "a": report.account, "c": scan}
    problems = finding_keys(report)
    for kept in range(len(problems), -1, -1):
        flag: dict[str, Any] = {"t": 1} if kept < len(problems) else {}
        value = _dumps({**base, "p": problems[:kept], **flag})
        if len(value) <= VALUE_LIMIT:
            return value
    raise ValueError("source and account names too long for a Re-run button")


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def parse_rerun_value(value: object) -> RerunRequest:
    """A Re-run button's value as sent back by Slack: untrusted, so anything unexpected is a ValueError."""
    if not isinstance(value, str):
        raise ValueError("Re-run value: expected a string")
    if len(value) > VALUE_LIMIT:
        raise ValueError(f"Re-run value: longer than {VALUE_LIMIT} characters")
    try:
        data = json.loads(value)
    except json.JSONDecodeError:
        raise ValueError("Re-run value: not JSON, so not a purview-bot Re-run button") from None
    if not isinstance(data, dict) or data.get("v") != VERSION or not set(data) <= _KEYS:
        raise ValueError("Re-run value: not a purview-bot Re-run value (version 1)")
    previous = data.get("p", [])
    if not isinstance(previous, list) or not all(isinstance(k, str) for k in previous):
        raise ValueError("Re-run value: 'p' must be a list of finding keys")
    for key in previous:
        split_key(key)
    truncated = data.get("t", 0)
    if truncated not in (0, 1) or isinstance(truncated, bool):
        raise ValueError("Re-run value: 't' must be 0 or 1")
    return RerunRequest(
        source=_name(data, "s", required=True) or "",
        account=_name(data, "a", required=True) or "",
        scan=_name(data, "c", required=False),
        previous=list(previous),
        truncated=bool(truncated),
    )


def _name(data: dict[str, Any], key: str, *, required: bool) -> str | None:
    """A Purview name from the value: a non-empty, single-line string of sensible length."""
    name = data.get(key)
    if name is None and not required:
        return None
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_LIMIT:
        raise ValueError(f"Re-run value: {key!r} must be a name of 1 to {NAME_LIMIT} characters")
    if any(ch in name for ch in "\r\n\x00"):
        raise ValueError(f"Re-run value: {key!r} must be a single line")
    return name
