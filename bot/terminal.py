"""The report for a person at a terminal: one line per finding, fixes indented, a summary line."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.text import Text

from checks import fixes
from checks.model import Finding, Report, Status
from checks.sections import doc_url
from handlers.render.what_changed import text_lines

MARKS: dict[Status, tuple[str, str]] = {
    Status.FAIL: ("✖", "bold red"),
    Status.WARN: ("▲", "yellow"),
    Status.UNKNOWN: ("?", "magenta"),
    Status.PASS: ("✔", "green"),
    Status.SKIPPED: ("–", "dim"),
}


def render(report: Report, console: Console) -> None:
    """Untrusted text goes in as plain `Text`, never as markup, so a resource name cannot style output."""
    mark, style = MARKS[report.status]
    head = Text()
    head.append(f"{mark} ", style=style)
    head.append(f"{report.account} / {report.source.name}", style="bold")
    head.append(f" ({report.source.kind or 'unknown kind'})  ")
    head.append(report.status.value.upper(), style=style)
    head.append(f"  {report.elapsed_ms} ms", style="dim")
    console.print(head)
    for scan in report.scans:
        line = Text("  scan ", style="dim")
        line.append(scan.name, style="bold")
        line.append(f" ({scan.kind}, {scan.integration_runtime or 'Azure IR'})", style="dim")
        if scan.last_run:
            line.append(f": last run {scan.last_run.status} {scan.last_run.end_time or ''}")
        else:
            line.append(": never run")
        console.print(line)
    for finding in report.findings:
        _finding(finding, report.docs_base, console)
    _what_changed(report, console)
    console.print(Text(summary_line(report), style="bold"))
    console.print()


def _finding(finding: Finding, docs_base: str, console: Console) -> None:
    mark, style = MARKS[finding.status]
    line = Text("  ")
    line.append(f"{mark} {finding.status.value:<7} ", style=style)
    line.append(f"{finding.check:<20} ", style="cyan")
    if finding.scan:
        line.append(f"[{finding.scan}] ", style="dim")
    line.append(finding.title)
    console.print(line)
    if finding.status in (Status.PASS, Status.SKIPPED):
        return
    for detail_line in finding.detail.splitlines():
        console.print(Text(f"      {detail_line}"))
    for fix in finding.fix:
        # a step is a command to paste (`$` before its first line, continuations as they are) or a
        # sentence to read (checks.fixes)
        if not fixes.is_command(fix):
            console.print(Text(f"      {' '.join(fix.split())}"))
            continue
        for index, fix_line in enumerate(fix.splitlines()):
            console.print(Text(f"      {'$ ' if index == 0 else '  '}{fix_line}", style="bold"))
    console.print(Text(f"      {doc_url(docs_base, finding.section)}", style="blue underline"))


def _what_changed(report: Report, console: Console) -> None:
    """The "What changed" lines (issue 11), likely triggers first; nothing when the report has none."""
    lines = text_lines(report)
    if not lines:
        return
    console.print(Text("  what changed since the last good scan", style="bold"))
    for line in lines:
        trigger, unknown = line.startswith("likely trigger"), line.startswith("unknown")
        console.print(Text(f"    {line}", style="bold red" if trigger else "dim" if unknown else ""))


def summary_line(report: Report) -> str:
    counts = Counter(f.status for f in report.findings)
    parts = [
        f"{counts[s]} {s.value}"
        for s in (Status.FAIL, Status.WARN, Status.UNKNOWN, Status.PASS, Status.SKIPPED)
    ]
    return f"  {report.source.name}: {report.status.value} — " + ", ".join(parts)
