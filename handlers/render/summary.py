"""The parent message in Slack: "Checking sales-adls…" while the diagnosis runs, then a one-glance summary.

Shared by the thread renderer: the status marks, the `Message` payload shape and the text helpers. Every
mrkdwn object is `verbatim`, so Slack does not auto-link or auto-mention anything in the plain text;
untrusted text is escaped on top of that (handlers.render.escape).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from checks.model import Finding, Report, Status
from handlers.render.escape import escape, truncate

BlockDict = dict[str, Any]

TEXT_LIMIT = 3000  # a section's or context element's text
HEADER_LIMIT = 150  # a header's plain text
FALLBACK_LIMIT = 4000  # a message's top-level `text` (notifications, screen readers)
LINE_LIMIT = 300  # one problem line in the summary

MARKS: dict[Status, str] = {
    Status.FAIL: "✖",
    Status.WARN: "▲",
    Status.UNKNOWN: "?",
    Status.PASS: "✔",
    Status.SKIPPED: "–",
}


Message = dict[str, Any]
"""What chat.postMessage / chat.update take: `{"text": fallback, "blocks": [BlockDict, …]}`.

A plain dict rather than a TypedDict so it passes where the Slack posting code takes `dict[str, Any]`.
"""


def mrkdwn(text: str) -> MarkdownTextObject:
    """Verbatim mrkdwn: only our own `<…>` and formatting are interpreted, nothing is auto-parsed."""
    return MarkdownTextObject(text=truncate(text, TEXT_LIMIT) or " ", verbatim=True)


def section(text: str) -> BlockDict:
    return SectionBlock(text=mrkdwn(text)).to_dict()


def context(*texts: str) -> BlockDict:
    return ContextBlock(elements=[mrkdwn(t) for t in texts[:10]]).to_dict()


def header(text: str) -> BlockDict:
    """A header from escaped text, cut to Slack's 150 characters."""
    return HeaderBlock(text=PlainTextObject(text=truncate(text, HEADER_LIMIT) or " ")).to_dict()


def fallback(text: str) -> str:
    return truncate(text, FALLBACK_LIMIT)


def _rank(status: Status) -> int:
    """Severity as a sort key: `skipped`, which does not count, below `pass`."""
    return -1 if status.severity is None else status.severity


def problems(report: Report) -> list[Finding]:
    """Non-passing findings, worst first, report order within a status."""
    return sorted((f for f in report.findings if f.status.is_problem), key=lambda f: -_rank(f.status))


def scan_tag(finding: Finding) -> str:
    return f" [{escape(finding.scan)}]" if finding.scan else ""


def headline(report: Report) -> str:
    """`✖ sales-adls (AdlsGen2) in contoso-pv: 2 problems`, escaped."""
    count = len(problems(report))
    outcome = "no problems" if count == 0 else f"{count} problem{'s' if count != 1 else ''}"
    kind = escape(report.source.kind or "unknown kind")
    return (
        f"{MARKS[report.status]} {escape(report.source.name)} ({kind}) in {escape(report.account)}: {outcome}"
    )


def counts_line(report: Report) -> str:
    """`2 fail · 5 pass · 3 skipped · 137 ms`: the statuses that occur, and the time taken."""
    counts = Counter(f.status for f in report.findings)
    parts = [f"{counts[s]} {s.value}" for s in sorted(Status, key=_rank, reverse=True) if counts[s]]
    started = report.started_at.strftime("%Y-%m-%d %H:%M UTC")
    return " · ".join([*parts, f"checked {started} in {report.elapsed_ms} ms"])


def summary_blocks(report: Report) -> list[BlockDict]:
    """Header with the worst status, one line per problem, counts and time: the parent message."""
    lines = [
        truncate(f"{MARKS[f.status]} *{escape(f.check)}*{scan_tag(f)}: {escape(f.title)}", LINE_LIMIT)
        for f in problems(report)
    ]
    body = _fit_lines(lines) if lines else "✔ Every check passed."
    return [
        header(headline(report)),
        section(body),
        context(f"{counts_line(report)} · findings and fixes in the thread"),
    ]


def _fit_lines(lines: list[str]) -> str:
    """As many whole lines as fit one section, then `…and N more in the thread`."""
    kept: list[str] = []
    size = -1  # no newline before the first line
    for i, line in enumerate(lines):
        left = len(lines) - i - 1
        room_for_more = len(f"\n…and {left} more in the thread") if left else 0
        if size + 1 + len(line) + room_for_more > TEXT_LIMIT:
            return "\n".join([*kept, f"…and {len(lines) - i} more in the thread"])
        kept.append(line)
        size += 1 + len(line)
    return "\n".join(kept)


def summary_text(report: Report) -> str:
    """The notification text: the headline and the problems' check ids."""
    checks = ", ".join(dict.fromkeys(escape(f.check) for f in problems(report)))
    return fallback(f"{headline(report)}{' — ' + checks if checks else ''}")


def summary_message(report: Report) -> Message:
    return {"text": summary_text(report), "blocks": summary_blocks(report)}


def progress_text(source: str, account: str | None = None) -> str:
    where = f" in {escape(account)}" if account else ""
    return fallback(f"Checking {escape(source)}{where}…")


def progress_blocks(source: str, account: str | None = None) -> list[BlockDict]:
    """The parent message while the diagnosis runs; `source` is what the user typed, so escaped."""
    return [
        section(f"⏳ {progress_text(source, account)}"),
        context("Running every check of the guide; the summary replaces this message."),
    ]


def progress_message(source: str, account: str | None = None) -> Message:
    return {"text": progress_text(source, account), "blocks": progress_blocks(source, account)}


def validate(blocks: list[BlockDict]) -> None:
    """Raise if a block does not build back with slack_sdk (which checks Slack's limits)."""
    for block in blocks:
        parsed = Block.parse(block)
        if parsed is None:
            raise ValueError(f"not a Block Kit block: {block.get('type')!r}")
        parsed.to_dict()
