"""The report model: a `Finding` is data; each output (terminal, JSON, Slack) renders it separately."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from checks.sections import doc_url

SCHEMA = "purview-bot/report@1"


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"


# fail > warn > unknown > pass; skipped does not count.
_SEVERITY = {Status.FAIL: 3, Status.WARN: 2, Status.UNKNOWN: 1, Status.PASS: 0}


def worst(statuses: list[Status]) -> Status:
    """The report's status: the worst finding, `pass` when nothing counts."""
    counted = [s for s in statuses if s in _SEVERITY]
    return max(counted, key=_SEVERITY.__getitem__, default=Status.PASS)


@dataclass
class Finding:
    check: str
    status: Status
    section: str
    title: str
    detail: str = ""
    fix: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    scan: str | None = None

    def to_json(self, docs_base: str) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status.value,
            "scan": self.scan,
            "section": self.section,
            "docUrl": doc_url(docs_base, self.section),
            "title": self.title,
            "detail": self.detail,
            "fix": list(self.fix),
            "evidence": self.evidence,
        }


@dataclass
class LastRun:
    id: str | None
    status: str | None
    end_time: str | None
    error: str | None
    section: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "endTime": self.end_time,
            "error": self.error,
            "section": self.section,
        }


@dataclass
class ScanSummary:
    name: str
    kind: str | None
    integration_runtime: str | None
    credential: str | None
    last_run: LastRun | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "integrationRuntime": self.integration_runtime,
            "credential": self.credential,
            "lastRun": self.last_run.to_json() if self.last_run else None,
        }


@dataclass
class SourceSummary:
    name: str
    kind: str | None
    resource_id: str | None
    collection: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "resourceId": self.resource_id,
            "collection": self.collection,
        }


@dataclass
class Report:
    account: str
    source: SourceSummary
    scans: list[ScanSummary]
    findings: list[Finding]
    started_at: datetime
    elapsed_ms: int
    docs_base: str

    @property
    def status(self) -> Status:
        return worst([f.status for f in self.findings])

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "account": self.account,
            "source": self.source.to_json(),
            "scans": [s.to_json() for s in self.scans],
            "status": self.status.value,
            "startedAt": self.started_at.isoformat().replace("+00:00", "Z"),
            "elapsedMs": self.elapsed_ms,
            "findings": [f.to_json(self.docs_base) for f in self.findings],
        }
