"""Small builders shared by the checks, so every finding is shaped the same way."""

from __future__ import annotations

from typing import Any

from checks.errors import GatewayError
from checks.model import Finding, Status
from checks.target import Target


def unknown(
    check: str,
    section: str,
    title: str,
    error: GatewayError,
    *,
    scan: str | None = None,
    evidence: dict[str, Any] | None = None,
) -> Finding:
    """The bot could not find out: say which call failed and what permission would let it."""
    return Finding(
        check=check,
        status=Status.UNKNOWN,
        section=section,
        title=title,
        detail=error.reason,
        evidence={**(evidence or {}), "error": error.as_evidence()},
        scan=scan,
    )


def skipped(check: str, section: str, title: str, detail: str, *, scan: str | None = None) -> Finding:
    return Finding(check=check, status=Status.SKIPPED, section=section, title=title, detail=detail, scan=scan)


def nothing_to_check(check: str, section: str, target: Target, what: str) -> list[Finding]:
    """The per-scan checks' shared guard: a source without a resource id, or without scans, is skipped."""
    if not target.resource_id:
        return [skipped(check, section, f"{target.source_name} has no resourceId", "Nothing to read.")]
    if not target.scans:
        return [skipped(check, section, f"{target.source_name} has no scans", f"No {what} to check.")]
    return []
