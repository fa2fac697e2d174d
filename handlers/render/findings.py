"""The full findings, posted in the summary's thread: as many messages as Slack's limits need.

Per problem: status mark and title, the detail, the fix lines in code blocks, the guide's link and the
evidence folded into a context line. Passing and skipped checks share one compact context line, so a
report stays readable. The last message carries the Re-run button.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, ButtonElement, DividerBlock

from checks.model import Finding, Report, ScanSummary, Status
from checks.sections import doc_url
from handlers.render.changes import VALUE_LIMIT, Changes
from handlers.render.escape import code_blocks, escape, escape_url, split_text, truncate
from handlers.render.summary import (
    MARKS,
    TEXT_LIMIT,
    BlockDict,
    Message,
    context,
    counts_line,
    fallback,
    headline,
    problems,
    scan_tag,
    section,
)
from handlers.render.times import utc_text

MAX_BLOCKS = 50
# Slack also rejects a message whose blocks add up to roughly 12-13k characters (`msg_blocks_too_long`,
# undocumented: slackapi/bolt-js#2509, #2867), so each message stays under this many characters of strings.
MESSAGE_BUDGET = 11_000
TITLE_LIMIT = 500
EVIDENCE_LIMIT = 1500
EVIDENCE_VALUE_LIMIT = 300
QUIET_LINE_LIMIT = 200
RERUN_ACTION_ID = "purview_rerun"


def thread_messages(report: Report, *, rerun_value: str, changes: Changes | None = None) -> list[Message]:
    """The thread replies for `report`, each within Slack's limits; the last has the Re-run button."""
    groups = [_intro(report, changes)]
    groups += [finding_blocks(f, report.docs_base) for f in problems(report)]
    groups.append(_quiet_blocks(report))
    groups.append([rerun_block(rerun_value)])
    pages = pack([g for g in groups if g])
    name = escape(report.source.name)
    return [{"text": _page_text(report, name, i, len(pages)), "blocks": page} for i, page in enumerate(pages)]


def _page_text(report: Report, name: str, index: int, total: int) -> str:
    if index == 0:
        return fallback(f"Findings — {headline(report)}")
    return fallback(f"Findings for {name}, continued ({index + 1} of {total})")


def _intro(report: Report, changes: Changes | None) -> list[BlockDict]:
    """What changed since the previous run (a re-run, or the last check kept in the store), then the
    scans and the counts."""
    blocks = [section(changes_text(changes, now=report.started_at))] if changes is not None else []
    scans = [_scan_line(scan) for scan in report.scans]
    blocks.append(context(truncate("\n".join([*scans, counts_line(report)]), TEXT_LIMIT)))
    return blocks


def _scan_line(scan: ScanSummary) -> str:
    runtime = escape(scan.integration_runtime or "Azure IR")
    line = f"scan *{escape(scan.name)}* ({escape(scan.kind or 'unknown kind')}, {runtime})"
    run = scan.last_run
    if run is None:
        return f"{line}: never run"
    return f"{line}: last run {escape(run.status or 'unknown')} {escape(run.end_time or '')}".rstrip()


def changes_text(changes: Changes, *, now: datetime | None = None) -> str:
    """`fixed: source-access (weekly)` / `new: key-vault-access` / `still: …`, one kind per line, under
    "Since the previous run" (a Re-run) or "Since the last check at 08:14 UTC" (from the store; the
    date too when it was not on `now`'s day)."""
    since = changes.since
    lines = [f"*Since the last check at {utc_text(since, now)}*" if since else "*Since the previous run*"]
    lines += [f"{MARKS[Status.PASS]} fixed: {escape(x)}" for x in changes.fixed]
    lines += [f"{MARKS[Status.FAIL]} new: {escape(x)}" for x in changes.new]
    lines += [f"• still: {escape(x)}" for x in changes.still]
    if not changes.changed:
        lines.insert(1, "No change." if changes.still else "No problems, then or now.")
    if changes.partial:
        lines.append(
            "_(the previous run had more problems than the button could carry: some 'new' may be old)_"
        )
    return truncate("\n".join(lines), TEXT_LIMIT)


def finding_blocks(finding: Finding, docs_base: str) -> list[BlockDict]:
    """A divider, the title and detail, the fixes as code, then the guide's link and the evidence."""
    title = truncate(escape(finding.title), TITLE_LIMIT)
    text = f"{MARKS[finding.status]} *{title}*{scan_tag(finding)}"
    if finding.detail:
        text += "\n" + escape(finding.detail)
    blocks = [DividerBlock().to_dict()]
    blocks += [section(chunk) for chunk in split_text(text, TEXT_LIMIT)]
    fix = "\n".join(line for fix in finding.fix for line in fix.splitlines())
    if fix.strip():
        blocks += [section(chunk) for chunk in code_blocks(fix, TEXT_LIMIT)]
    notes = [f"{doc_link(docs_base, finding.section)} · {escape(finding.check)}"]
    if finding.evidence:
        notes.append(evidence_text(finding.evidence))
    blocks.append(context(*notes))
    return blocks


def doc_link(docs_base: str, section_anchor: str) -> str:
    """`<url|Guide: Section name>`; the URL is configuration, still kept from breaking out of the link."""
    url = escape_url(doc_url(docs_base, section_anchor))
    name = section_anchor.replace("-", " ").strip().capitalize() or "troubleshooting"
    return f"<{url}|Guide: {escape(name)}>"


def evidence_text(evidence: dict[str, Any], limit: int = EVIDENCE_LIMIT) -> str:
    """`key: value · key: value`, nested values as compact JSON, each cut short, all escaped."""
    pairs = [
        f"{escape(str(key))}: {truncate(escape(_compact(value)), EVIDENCE_VALUE_LIMIT)}"
        for key, value in evidence.items()
    ]
    return truncate("Evidence: " + " · ".join(pairs), limit)


def _compact(value: object) -> str:
    if isinstance(value, str):
        return " ".join(value.split())
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _quiet_blocks(report: Report) -> list[BlockDict]:
    """Passing and skipped findings, one short line each, in as few context blocks as fit."""
    lines = [
        truncate(f"{MARKS[f.status]} {escape(f.check)}{scan_tag(f)}: {escape(f.title)}", QUIET_LINE_LIMIT)
        for f in report.findings
        if f.status in (Status.PASS, Status.SKIPPED)
    ]
    if not lines:
        return []
    return [DividerBlock().to_dict()] + [context(chunk) for chunk in split_text("\n".join(lines), TEXT_LIMIT)]


def rerun_block(value: str) -> BlockDict:
    """The Re-run button; `value` comes from handlers.changes.rerun_value."""
    if not value or len(value) > VALUE_LIMIT:
        raise ValueError(f"Re-run value must be 1 to {VALUE_LIMIT} characters, got {len(value)}")
    button = ButtonElement(text="Re-run", action_id=RERUN_ACTION_ID, value=value)
    return ActionsBlock(elements=[button]).to_dict()


def pack(
    groups: list[list[BlockDict]], *, max_blocks: int = MAX_BLOCKS, budget: int = MESSAGE_BUDGET
) -> list[list[BlockDict]]:
    """Blocks into messages of at most `max_blocks` blocks and `budget` characters: a group (one
    finding) stays in one message when it fits in one, else it continues in the next."""
    pages: list[list[BlockDict]] = [[]]

    def fits(extra: list[BlockDict], page: list[BlockDict]) -> bool:
        return len(page) + len(extra) <= max_blocks and size(page) + size(extra) <= budget

    for group in groups:
        if pages[-1] and not fits(group, pages[-1]) and fits(group, []):
            pages.append([])
        for block in group:
            if pages[-1] and not fits([block], pages[-1]):
                pages.append([])
            pages[-1].append(block)
    return [page for page in map(_trim_dividers, pages) if page]


def size(blocks: list[BlockDict]) -> int:
    """Characters of every string in the blocks: a conservative measure of a message's length."""
    return sum(_strings(b) for b in blocks)


def _strings(node: object) -> int:
    if isinstance(node, str):
        return len(node)
    if isinstance(node, dict):
        return sum(_strings(v) for v in node.values())
    if isinstance(node, list):
        return sum(_strings(v) for v in node)
    return 0


def _trim_dividers(page: list[BlockDict]) -> list[BlockDict]:
    start, end = 0, len(page)
    while start < end and page[start]["type"] == "divider":
        start += 1
    while end > start and page[end - 1]["type"] == "divider":
        end -= 1
    return page[start:end]
