"""The report model: a `Finding` is data; each output (terminal, JSON, Slack) renders it separately.

What each status means (`Status` carries the same text):

- `fail`: this stops the scan now.
- `warn`: a hazard, or a fact the bot cannot verify, that may stop it.
- `unknown`: the bot could not read what it needed; the finding names the call and the permission.
- `pass`: verified fine. A `pass` never names a problem in its own title.
- `skipped`: does not apply.

The dataclasses are frozen and keyword-only: build them with keywords, and build a new one rather than
change one (`dataclasses.replace`). Their list fields stay lists, as the JSON shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from checks.changes.record import Change
from checks.sections import doc_url

SCHEMA = "purview-bot/report@1"


class Status(StrEnum):
    """A finding's verdict.

    `fail`: this stops the scan now. `warn`: a hazard, or a fact the bot cannot verify, that may stop it.
    `unknown`: the bot could not read what it needed (the finding names the call and the permission).
    `pass`: verified fine; a `pass` never names a problem in its own title. `skipped`: does not apply.
    """

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"

    @property
    def severity(self) -> int | None:
        """How bad: fail 3 > warn 2 > unknown 1 > pass 0; None for `skipped`, which does not count."""
        match self:
            case Status.FAIL:
                return 3
            case Status.WARN:
                return 2
            case Status.UNKNOWN:
                return 1
            case Status.PASS:
                return 0
            case Status.SKIPPED:
                return None

    @property
    def is_problem(self) -> bool:
        """`fail`, `warn` and `unknown`: what someone has to act on or look at."""
        return self in (Status.FAIL, Status.WARN, Status.UNKNOWN)


def worst(statuses: list[Status]) -> Status:
    """The report's status: the worst finding, `pass` when nothing counts."""
    counted = [(s.severity, s) for s in statuses if s.severity is not None]
    return max(counted, key=lambda pair: pair[0], default=(0, Status.PASS))[1]


@dataclass(frozen=True, kw_only=True)
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


@dataclass(frozen=True, kw_only=True)
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


@dataclass(frozen=True, kw_only=True)
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


@dataclass(frozen=True, kw_only=True)
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


@dataclass(frozen=True, kw_only=True)
class Report:
    account: str
    source: SourceSummary
    scans: list[ScanSummary]
    findings: list[Finding]
    started_at: datetime
    elapsed_ms: int
    docs_base: str
    changes: list[Change] = field(default_factory=list)
    """What changed on the resources read, since the last good scan (issue 11); never affects `status`."""

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
            "changes": [c.to_json() for c in self.changes],
        }
