"""Root-cause fingerprints: failures that one fix would end share one fingerprint, so they get one post.

A failed run is explained by one failing finding of its diagnosis: the fail finding in the section its
error classifies to (the scan-history check names that section), else the first fail finding that is not
scan history. Its fingerprint is the check plus the evidence that names the failing fact — the vault, the
identity, the runtime, the resource, the permission — and never the scan or the source, which differ
between the runs of a storm. A run no finding explains gets a fingerprint of its own: grouping by an
error text alone could merge two unrelated failures, and a merged post would hide one of them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from checks.model import Finding, Report, Status

T = TypeVar("T")

SCAN_HISTORY = "scan-history"

# Evidence paths (dotted for nested objects) that name a failing fact. Deliberately not `scans`,
# `secrets`, `scan`, `credential` or free text: those vary between the runs one cause breaks.
CAUSE_KEYS: tuple[str, ...] = (
    "vaultId",
    "identity.objectId",
    "model",
    "secretPermissions",
    "getSecret.granted",
    "readMetadata.granted",
    "secretName",
    "secretVersion",
    "integrationRuntime",
    "resourceId",
    "action",
    "scope",
    "runtime.name",
    "runtime.kind",
    "posture.state",
)


@dataclass(frozen=True)
class Cause:
    """Why a run failed, as far as the diagnosis tells: the explaining finding (None when none does)."""

    fingerprint: str
    finding: Finding | None

    @property
    def shared(self) -> bool:
        """A fingerprint that other runs can share (one derived from a finding)."""
        return self.finding is not None


def explaining_finding(report: Report, scan: str, section: str | None) -> Finding | None:
    """The fail finding that explains the scan's failure, or None.

    Findings about another scan of the same source never explain this one; findings about no scan
    (a vault, the account's policy) may.
    """
    fails = [
        f
        for f in report.findings
        if f.status is Status.FAIL and f.check != SCAN_HISTORY and f.scan in (None, scan)
    ]
    if section is not None:
        in_section = [f for f in fails if f.section == section]
        if in_section:
            return min(in_section, key=lambda f: f.scan is None)  # about this scan first
    return fails[0] if fails else None


def cause_evidence(finding: Finding) -> dict[str, Any]:
    """The canonical subset of a finding's evidence that names the failing fact."""
    out: dict[str, Any] = {}
    for path in CAUSE_KEYS:
        value = _lookup(finding.evidence, path)
        if value is not None:
            out[path] = _canonical(value)
    return out


def fingerprint(finding: Finding) -> str:
    """`check:digest` of the check id and its cause evidence: stable across processes and restarts."""
    body = json.dumps([finding.check, cause_evidence(finding)], sort_keys=True, separators=(",", ":"))
    return f"{finding.check}:{hashlib.sha256(body.encode()).hexdigest()[:16]}"


def cause_of(report: Report | None, *, run_key: str, scan: str, section: str | None) -> Cause:
    """The run's cause; `run_key` (account/source/scan/run) makes the fingerprint of an unexplained run."""
    finding = explaining_finding(report, scan, section) if report is not None else None
    if finding is None:
        digest = hashlib.sha256(run_key.encode()).hexdigest()[:16]
        return Cause(f"run:{digest}", None)
    return Cause(fingerprint(finding), finding)


def group_by_cause(items: Sequence[tuple[Cause, T]]) -> list[tuple[Cause, list[T]]]:
    """Items sharing a fingerprint together, in order of first appearance."""
    groups: dict[str, tuple[Cause, list[T]]] = {}
    for cause, item in items:
        groups.setdefault(cause.fingerprint, (cause, []))[1].append(item)
    return list(groups.values())


def _lookup(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _canonical(value: Any) -> Any:
    """Case-insensitive ids (ARM ids, GUIDs, names), order-insensitive lists."""
    if isinstance(value, str):
        return value.strip().lower().rstrip("/")
    if isinstance(value, list):
        return sorted(json.dumps(_canonical(v), sort_keys=True) for v in value)
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return value
