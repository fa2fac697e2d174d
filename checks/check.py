"""The shape every check module has (Prowler style: one check, one module, metadata beside the code).

A check builds its findings from its own `CheckMeta` (`META.finding(...)`, `META.unknown(...)`,
`META.skipped(...)`), so no check restates its id or section.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from checks.errors import GatewayError
from checks.model import Finding, Status
from checks.target import Target


@dataclass(frozen=True, kw_only=True)
class CheckMeta:
    """What a check is: its id (its module's name with `-`), title, guide sections (the first is where its
    findings link unless they say otherwise) and a description."""

    id: str
    title: str
    sections: tuple[str, ...]
    description: str

    @property
    def section(self) -> str:
        """The section a finding of this check links to unless it names another of `sections`."""
        return self.sections[0]

    def finding(
        self,
        status: Status,
        title: str,
        *,
        detail: str = "",
        fix: Iterable[str] = (),
        evidence: dict[str, Any] | None = None,
        scan: str | None = None,
        section: str | None = None,
    ) -> Finding:
        """A finding of this check, in its first section unless `section` names another."""
        return Finding(
            check=self.id,
            status=status,
            section=self.section if section is None else section,
            title=title,
            detail=detail,
            fix=list(fix),
            evidence={} if evidence is None else evidence,
            scan=scan,
        )

    def unknown(
        self,
        title: str,
        error: GatewayError,
        *,
        scan: str | None = None,
        evidence: dict[str, Any] | None = None,
        section: str | None = None,
    ) -> Finding:
        """The bot could not find out: the detail says which call failed and what permission would let it."""
        return self.finding(
            Status.UNKNOWN,
            title,
            detail=error.reason,
            evidence={**(evidence or {}), "error": error.as_evidence()},
            scan=scan,
            section=section,
        )

    def skipped(
        self, title: str, detail: str, *, scan: str | None = None, section: str | None = None
    ) -> Finding:
        """The check does not apply here; `detail` says why."""
        return self.finding(Status.SKIPPED, title, detail=detail, scan=scan, section=section)

    def nothing_to_check(self, target: Target, what: str, *, section: str | None = None) -> list[Finding]:
        """The per-scan checks' shared guard: a source without a resource id, or without scans, is skipped;
        an empty list when there is something to check."""
        if not target.resource_id:
            return [
                self.skipped(f"{target.source_name} has no resourceId", "Nothing to read.", section=section)
            ]
        if not target.scans:
            return [
                self.skipped(f"{target.source_name} has no scans", f"No {what} to check.", section=section)
            ]
        return []


RunCheck = Callable[[Target], Awaitable[list[Finding]]]


@dataclass(frozen=True)
class Check:
    meta: CheckMeta
    run: RunCheck
