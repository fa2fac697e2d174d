"""The parent message in Slack: "Checking sales-adls…" while the diagnosis runs, then the verdict.

The first screen answers "what is broken, what do I do": a status word (FAIL, WARN, COULD NOT CHECK,
PASS) beside its icon, the one-line cause, the fix in one line, compact fields (failing since, last
success, scan, runtime) and the buttons (Re-check, Open in Purview, Guide). `scan-history` is background:
it fills the fields and is not counted as a problem, so a Re-run after the fix does not report the old
failed run. Findings the bot could not check are said apart, never counted as problems.

Text objects are not `verbatim` (URLs in Azure's texts link); untrusted text is escaped
(handlers.render.escape), which also keeps mentions impossible.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from checks import fixes
from checks.model import Finding, Report, ScanSummary, Status
from checks.sections import DEFAULT_DOCS_URL, doc_url
from checks.times import parse_time
from handlers.render.changes import BACKGROUND, VALUE_LIMIT
from handlers.render.escape import code, escape, escape_url, truncate
from handlers.render.times import slack_date
from handlers.render.what_changed import trigger_blocks

BlockDict = dict[str, Any]

TEXT_LIMIT = 3000  # a section's or context element's text
HEADER_LIMIT = 150  # a header's plain text
FALLBACK_LIMIT = 4000  # a message's top-level `text` (notifications, screen readers)
LINE_LIMIT = 300  # one line of the summary (cause, fix)
FIELD_LIMIT = 2000  # a section field's text
RERUN_ACTION_ID = "purview_rerun"
OPEN_PURVIEW_ACTION_ID = "purview_open_purview"
GUIDE_ACTION_ID = "purview_open_guide"
LINK_ACTION_IDS = (OPEN_PURVIEW_ACTION_ID, GUIDE_ACTION_ID)
"""URL buttons: Slack still sends their clicks, which the app acks and ignores."""
PURVIEW_PORTAL = "https://web.purview.azure.com/resource/{account}"
AZURE_PORTAL_RESOURCE = "https://portal.azure.com/#resource{id}"

MARKS: dict[Status, str] = {
    Status.FAIL: "✖",
    Status.WARN: "▲",
    Status.UNKNOWN: "?",
    Status.PASS: "✔",
    Status.SKIPPED: "–",
}
WORDS: dict[Status, str] = {
    Status.FAIL: "FAIL",
    Status.WARN: "WARN",
    Status.UNKNOWN: "COULD NOT CHECK",
    Status.PASS: "PASS",
    Status.SKIPPED: "N/A",
}


Message = dict[str, Any]
"""What chat.postMessage / chat.update take: `{"text": fallback, "blocks": [BlockDict, …]}`.

A plain dict rather than a TypedDict so it passes where the Slack posting code takes `dict[str, Any]`.
"""


def mark(status: Status) -> str:
    """`✖ FAIL`: the word beside the icon, so a screen reader says the status."""
    return f"{MARKS[status]} {WORDS[status]}"


def mrkdwn(text: str) -> MarkdownTextObject:
    """mrkdwn, not verbatim: our `<…>` links and Slack's auto-links of plain URLs work; what is
    untrusted was escaped before (no `<`, no `@` starting a word)."""
    return MarkdownTextObject(text=truncate(text, TEXT_LIMIT) or " ")


def section(text: str) -> BlockDict:
    return SectionBlock(text=mrkdwn(text)).to_dict()


def fields_section(fields: list[str]) -> BlockDict:
    """Up to 10 short `*Label*\\nvalue` fields, shown two per row."""
    return SectionBlock(fields=[mrkdwn(truncate(f, FIELD_LIMIT)) for f in fields[:10]]).to_dict()


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
    """What someone has to act on: fail and warn findings but the background ones, worst first."""
    found = [
        f for f in report.findings if f.status in (Status.FAIL, Status.WARN) and f.check not in BACKGROUND
    ]
    return sorted(found, key=lambda f: -_rank(f.status))


def unchecked(report: Report) -> list[Finding]:
    """What the bot could not check (`unknown`): said apart, not counted as problems."""
    return [f for f in report.findings if f.status is Status.UNKNOWN]


def background(report: Report) -> list[Finding]:
    """The scans' run history as the checks read it (every status but unknown)."""
    return [f for f in report.findings if f.check in BACKGROUND and f.status is not Status.UNKNOWN]


def quiet(report: Report) -> list[Finding]:
    """Passed and not-applicable checks (the background aside)."""
    return [
        f for f in report.findings if f.status in (Status.PASS, Status.SKIPPED) and f.check not in BACKGROUND
    ]


def cause(report: Report) -> Finding | None:
    """The finding the first screen leads with: the worst problem, else a failed scan with no other
    explanation, else the first check that could not run."""
    failed_runs = [f for f in background(report) if f.status in (Status.FAIL, Status.WARN)]
    for found in (problems(report), failed_runs, unchecked(report)):
        if found:
            return found[0]
    return None


def scan_tag(finding: Finding) -> str:
    return f" [{escape(finding.scan)}]" if finding.scan else ""


def cause_text(finding: Finding) -> str:
    """ "scan weekly: contoso-pv cannot read blobs in stsalesadls …", escaped, one line."""
    title = " ".join(finding.title.split())
    where = ""
    if finding.scan and f"scan {finding.scan}".lower() not in title.lower():
        where = f"scan {escape(finding.scan)}: "
    return truncate(where + escape(title), LINE_LIMIT)


def fix_hint(finding: Finding) -> str:
    """The fix in one line: its first prose step, or the command to run (given in full in the thread)."""
    steps = [s for s in finding.fix if s.strip()]
    if not steps:
        return "see the guide's section linked in the thread"
    first = steps[0]
    more = f" (+{len(steps) - 1} more step{'s' if len(steps) > 2 else ''})" if len(steps) > 1 else ""
    if fixes.is_command(first):
        program = " ".join(fixes.first_line(first).split()[:4])
        return f"run {code(program + ' …')}: the command to copy is in the thread{more}"
    return truncate(escape(" ".join(first.split())), LINE_LIMIT) + more


def unchecked_line(report: Report) -> str:
    """ "2 checks could not run: Could not read the role assignments of …" (the first reason)."""
    found = unchecked(report)
    if not found:
        return ""
    count = len(found)
    noun = "check" if count == 1 else "checks"
    reasons = list(dict.fromkeys(" ".join(f.title.split()) for f in found))
    others = (
        f" (and {len(reasons) - 1} other reason{'s' if len(reasons) > 2 else ''})" if len(reasons) > 1 else ""
    )
    return truncate(f"{count} {noun} could not run: {escape(reasons[0])}{others}", LINE_LIMIT)


def headline(report: Report) -> str:
    """`✖ FAIL: sales-adls (AdlsGen2) in contoso-pv`, escaped."""
    kind = escape(report.source.kind or "unknown kind")
    return f"{mark(report.status)}: {escape(report.source.name)} ({kind}) in {escape(report.account)}"


def counts_line(report: Report) -> str:
    """`1 problem · 1 could not run · 3 passed · 4 N/A · checked <date> in 137 ms`."""
    parts = []
    count = len(problems(report))
    if count or not unchecked(report):
        parts.append(f"{count} problem{'s' if count != 1 else ''}")
    if unchecked(report):
        parts.append(f"{len(unchecked(report))} could not run")
    passed = sum(1 for f in quiet(report) if f.status is Status.PASS)
    skipped = sum(1 for f in quiet(report) if f.status is Status.SKIPPED)
    parts += [f"{passed} passed", f"{skipped} N/A"]
    checked = slack_date(report.started_at, report.started_at)
    return " · ".join([*parts, f"checked {checked} in {report.elapsed_ms} ms"])


def _when(value: object) -> datetime | None:
    """A time from evidence: a wire timestamp, or the `2026-11-27 14:04 UTC` form the checks write."""
    when = parse_time(value)
    if when is None and isinstance(value, str) and value.endswith(" UTC"):
        when = parse_time(value.removesuffix(" UTC").replace(" ", "T"))
    return when


def scan_of(report: Report, name: str | None) -> ScanSummary | None:
    return next((s for s in report.scans if s.name == name), None)


def history_of(report: Report, scan: str | None) -> Finding | None:
    return next((f for f in report.findings if f.check in BACKGROUND and f.scan == scan), None)


def runtime_text(scan: ScanSummary) -> str:
    return escape(scan.integration_runtime) if scan.integration_runtime else "Azure IR"


def scan_fields(report: Report, scan_name: str | None) -> list[str]:
    """Failing since, last success, scan and runtime of one scan (the cause's, else the first)."""
    scan = scan_of(report, scan_name) or (report.scans[0] if report.scans else None)
    if scan is None:
        return []
    now = report.started_at
    fields: list[str] = []
    history = history_of(report, scan.name)
    evidence: dict[str, Any] = history.evidence if history is not None else {}
    failures = evidence.get("consecutiveFailures")
    since = _when(evidence.get("causeSince")) or _when(evidence.get("failingSince"))
    if isinstance(failures, int) and failures > 0 and since is not None:
        runs = f"{failures} failed run{'s' if failures != 1 else ''}"
        fields.append(f"*Failing since*\n{slack_date(since, now)} ({runs})")
    elif scan.last_run is not None and (ended := _when(scan.last_run.end_time)) is not None:
        fields.append(f"*Last run*\n{escape(scan.last_run.status or 'unknown')} {slack_date(ended, now)}")
    success = evidence.get("lastSuccess")
    ended = _when(success.get("endTime")) if isinstance(success, dict) else None
    if ended is not None:
        fields.append(f"*Last success*\n{slack_date(ended, now)}")
    elif isinstance(failures, int) and failures > 0:
        fields.append("*Last success*\nnone in the history")
    if scan.last_run is None:
        fields.append("*Last run*\nnever run")
    kind = f" ({escape(scan.kind)})" if scan.kind else ""
    others = len(report.scans) - 1
    more = f" +{others} other scan{'s' if others != 1 else ''}" if others > 0 else ""
    fields.append(f"*Scan*\n{escape(scan.name)}{kind}{more}")
    fields.append(f"*Runtime*\n{runtime_text(scan)}")
    return fields


def purview_url(account: str) -> str:
    """The Microsoft Purview governance portal, opened on the account."""
    return PURVIEW_PORTAL.format(account=account)


def portal_url(resource_id: str) -> str:
    """The Azure portal page of an ARM resource."""
    return AZURE_PORTAL_RESOURCE.format(id=resource_id)


def rerun_button(value: str, text: str = "Re-check") -> ButtonElement:
    """The Re-check (Re-run) button; `value` comes from handlers.render.changes.rerun_value."""
    if not value or len(value) > VALUE_LIMIT:
        raise ValueError(f"Re-run value must be 1 to {VALUE_LIMIT} characters, got {len(value)}")
    return ButtonElement(text=text, action_id=RERUN_ACTION_ID, value=value, style="primary")


def buttons(report: Report, rerun_value: str | None) -> BlockDict:
    """Re-check, Open in Purview, Guide (the cause's section)."""
    found = cause(report)
    guide = doc_url(report.docs_base or DEFAULT_DOCS_URL, found.section) if found else report.docs_base
    elements: list[ButtonElement] = []
    if rerun_value:
        elements.append(rerun_button(rerun_value))
    elements.append(
        ButtonElement(
            text="Open in Purview", action_id=OPEN_PURVIEW_ACTION_ID, url=purview_url(report.account)
        )
    )
    if guide:
        elements.append(ButtonElement(text="Guide", action_id=GUIDE_ACTION_ID, url=guide))
    return ActionsBlock(elements=elements).to_dict()


def verdict_lines(report: Report) -> list[str]:
    """The cause and the fix (or why there is nothing to fix), then what could not be checked."""
    found = cause(report)
    lines: list[str] = []
    if found is None:
        lines.append("Every check passed.")
    elif found.status is Status.UNKNOWN:
        lines.append(f"*Nothing found wrong, but {unchecked_line(report)}*")
    else:
        prefix = "" if found.status is report.status else f"{mark(found.status)}: "
        lines.append(f"*{prefix}{cause_text(found)}*")
        if found.check in BACKGROUND:
            lines.append(
                "No check finds a cause now: if something was fixed since this run, run the scan to "
                "confirm; the error and the guide's section are in the thread."
            )
        else:
            lines.append(f"*Fix:* {fix_hint(found)}")
        others = problems(report)[1:] if found.check not in BACKGROUND else problems(report)
        if others:
            names = ", ".join(dict.fromkeys(f"{WORDS[f.status]} {escape(f.check)}" for f in others))
            lines.append(truncate(f"Also: {names} (in the thread)", LINE_LIMIT))
        if unchecked(report):
            lines.append(unchecked_line(report))
    return lines


def summary_blocks(report: Report, *, rerun_value: str | None = None) -> list[BlockDict]:
    """Verdict, cause and fix, the scan's fields, the buttons, counts: the parent message."""
    found = cause(report)
    blocks = [header(headline(report)), section("\n".join(verdict_lines(report)))]
    if found is not None:  # who changed what before it broke: "is it new" on the first screen
        blocks += trigger_blocks(report, of=found)
    fields = scan_fields(report, found.scan if found else None)
    if fields:
        blocks.append(fields_section(fields))
    blocks.append(buttons(report, rerun_value))
    blocks.append(context(f"{counts_line(report)} · details in the thread"))
    return blocks


def summary_text(report: Report) -> str:
    """The notification text: the status word, the source and the cause."""
    found = cause(report)
    head = f"{WORDS[report.status]} {escape(report.source.name)} ({escape(report.account)})"
    if found is None:
        return fallback(f"{head}: every check passed")
    if found.status is Status.UNKNOWN:
        return fallback(f"{head}: {unchecked_line(report)}")
    return fallback(f"{head}: {cause_text(found)}")


def summary_message(report: Report, *, rerun_value: str | None = None) -> Message:
    return {"text": summary_text(report), "blocks": summary_blocks(report, rerun_value=rerun_value)}


def progress_text(source: str, account: str | None = None, *, requester: str | None = None) -> str:
    where = f" in {escape(account)}" if account else ""
    verb = "Re-checking" if requester is not None else "Checking"
    return fallback(f"{verb} {escape(source)}{where}…")


def progress_blocks(
    source: str, account: str | None = None, *, requester: str | None = None
) -> list[BlockDict]:
    """The parent message while the diagnosis runs; `source` is what the user typed, so escaped.
    `requester`: a Slack user id (a Re-check click), named as who asked."""
    text = f"⏳ {progress_text(source, account, requester=requester)}"
    if requester:
        text += f" requested by <@{escape(requester)}>"
    return [
        section(text),
        context("Running every check of the guide; the verdict replaces this message."),
    ]


def progress_message(source: str, account: str | None = None, *, requester: str | None = None) -> Message:
    return {
        "text": progress_text(source, account, requester=requester),
        "blocks": progress_blocks(source, account, requester=requester),
    }


def validate(blocks: list[BlockDict]) -> None:
    """Raise if a block does not build back with slack_sdk (which checks Slack's limits)."""
    for block in blocks:
        parsed = Block.parse(block)
        if parsed is None:
            raise ValueError(f"not a Block Kit block: {block.get('type')!r}")
        parsed.to_dict()


def link(url: str, label: str) -> str:
    """`<url|label>`: a URL we built (kept from breaking out of the link) and an escaped label."""
    return f"<{escape_url(url)}|{label}>"
