"""Reports built directly from checks.model types, and walkers over Block Kit payloads, for these tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from checks import sections
from checks.model import Finding, LastRun, Report, ScanSummary, SourceSummary, Status

# Everything Slack would interpret if it were not escaped: mentions, a disguised link, an entity, fences.
HOSTILE = "<!channel> <@U1> <!here> <https://evil.example|click> &amp; & ``` `tick` *bold* > quote"


def finding(
    check: str = "source-access",
    status: Status = Status.FAIL,
    *,
    scan: str | None = "weekly",
    title: str = "contoso-pv cannot read blobs in stsalesadls",
    detail: str = "Grant Storage Blob Data Reader.",
    fix: list[str] | None = None,
    evidence: dict[str, Any] | None = None,
    section: str = sections.SOURCE_ACCESS,
) -> Finding:
    return Finding(
        check=check,
        status=status,
        section=section,
        title=title,
        detail=detail,
        fix=["az role assignment create --role 'Storage Blob Data Reader'"] if fix is None else fix,
        evidence={"granted": False} if evidence is None else evidence,
        scan=scan,
    )


def report(
    findings: list[Finding],
    *,
    source: str = "sales-adls",
    account: str = "contoso-pv",
    kind: str | None = "AdlsGen2",
    scans: list[ScanSummary] | None = None,
) -> Report:
    run = LastRun(id="r1", status="Failed", end_time="2026-11-27T14:04:40Z", error="403", section=None)
    return Report(
        account=account,
        source=SourceSummary(name=source, kind=kind, resource_id="/subscriptions/x", collection="sales"),
        scans=[
            ScanSummary(
                name="weekly", kind="AdlsGen2Msi", integration_runtime=None, credential=None, last_run=run
            )
        ]
        if scans is None
        else scans,
        findings=findings,
        started_at=datetime(2026, 11, 28, 8, 0, tzinfo=UTC),
        elapsed_ms=412,
        docs_base=sections.DEFAULT_DOCS_URL,
    )


def sample_findings() -> list[Finding]:
    """sales-adls as the sample tenant shows it: two failures, passes and skips."""
    return [
        finding("scan-history", title="Scan weekly of sales-adls failed", fix=[]),
        finding("source-access"),
        finding("reader-role", Status.PASS, title="contoso-pv can read stsalesadls", fix=[]),
        finding("key-vault-secret", Status.SKIPPED, title="Scan weekly: Key Vault secret", fix=[]),
        finding("azure-policy", Status.PASS, scan=None, title="No deny policy", fix=[]),
    ]


def texts(node: object) -> Iterator[str]:
    """Every `text` string in a payload (block texts, element texts, messages' fallback text)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                yield value
            else:
                yield from texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from texts(item)


def blocks_of(node: object) -> Iterator[dict[str, Any]]:
    """Every top-level block of the messages in a payload."""
    if isinstance(node, dict):
        if "blocks" in node:
            yield from node["blocks"]
        else:
            for value in node.values():
                yield from blocks_of(value)
    elif isinstance(node, list):
        for item in node:
            yield from blocks_of(item)
