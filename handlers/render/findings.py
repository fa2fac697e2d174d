"""The findings, posted in the summary's thread: quiet, one block per problem, as many messages as needed.

- The scans' runs first (background: status, since when, last success, the error text once).
- One block per problem: status word, cause, an evidence sentence with portal links on resource names
  (no ARM-id or GUID floods), the fix (commands as code blocks to copy, prose steps as text), the guide's
  section by its real title, and a "Show evidence" button (the full evidence opens in a modal, read from
  the stored report: handlers.slack.evidence).
- What the bot could not check, apart; passed and not-applicable checks on one line.
- The last message ends with the Re-check button, where the reader of the thread is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, ButtonElement, DividerBlock
from slack_sdk.models.views import View

from checks import fixes
from checks.model import Finding, Report, ScanSummary, Status
from checks.sections import doc_url
from checks.sections import title as section_title
from handlers.render.changes import BACKGROUND, Change, Changes, label
from handlers.render.escape import code_blocks, escape, escape_url, split_text, truncate
from handlers.render.summary import (
    MARKS,
    RERUN_ACTION_ID,
    TEXT_LIMIT,
    WORDS,
    BlockDict,
    Message,
    _when,
    context,
    counts_line,
    fallback,
    headline,
    mark,
    portal_url,
    problems,
    quiet,
    rerun_button,
    runtime_text,
    section,
    unchecked,
)
from handlers.render.times import slack_date, utc_text
from handlers.render.what_changed import what_changed_blocks

__all__ = ["RERUN_ACTION_ID", "evidence_value", "thread_messages"]

MAX_BLOCKS = 50
# Slack also rejects a message whose blocks add up to roughly 12-13k characters (`msg_blocks_too_long`,
# undocumented: slackapi/bolt-js#2509, #2867), so each message stays under this many characters of strings.
MESSAGE_BUDGET = 11_000
TITLE_LIMIT = 500
DETAIL_LIMIT = 1200
ERROR_LIMIT = 600
QUIET_LIMIT = 1500
EVIDENCE_ACTION_ID = "purview_evidence"
EVIDENCE_VERSION = 1
MODAL_BLOCKS = 100
MODAL_TITLE = 24

# an ARM resource id in Azure's or the checks' text (up to the first character no id contains)
_ARM_ID = re.compile(r"/subscriptions/[0-9A-Fa-f-]{36}(?:/[^\s/,;:()'\"<>|]+)*", re.IGNORECASE)
_ISO_TIME = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)")
_GUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)


def thread_messages(
    report: Report,
    *,
    rerun_value: str,
    changes: Changes | None = None,
    requester: str | None = None,
) -> list[Message]:
    """The thread replies for `report`, each within Slack's limits; the last ends with Re-check."""
    groups = [_intro(report, changes, requester)]
    errors = _scan_errors(report)
    groups += [problem_blocks(f, report, errors) for f in problems(report)]
    groups.append(what_changed_blocks(report))
    groups.append(_unchecked_blocks(report))
    groups.append(_quiet_blocks(report))
    groups.append([ActionsBlock(elements=[rerun_button(rerun_value)]).to_dict()])
    pages = pack([g for g in groups if g])
    name = escape(report.source.name)
    return [{"text": _page_text(report, name, i, len(pages)), "blocks": page} for i, page in enumerate(pages)]


def _page_text(report: Report, name: str, index: int, total: int) -> str:
    if index == 0:
        return fallback(f"Findings — {headline(report)}")
    return fallback(f"Findings for {name}, continued ({index + 1} of {total})")


def _intro(report: Report, changes: Changes | None, requester: str | None) -> list[BlockDict]:
    """What changed since the last check (from the store), then each scan's runs."""
    blocks = [section(changes_text(changes, report, requester=requester))] if changes is not None else []
    for scan in report.scans:
        blocks.append(section(scan_text(report, scan)))
    blocks.append(context(counts_line(report)))
    return blocks


def scan_text(report: Report, scan: ScanSummary) -> str:
    """ "*Scan weekly* (AdlsGen2Msi, Azure IR): Failed <date> · failing since … · last success …", and the
    error text once, with the guide's section the classifier picked."""
    now = report.started_at
    kind = f"{escape(scan.kind)}, " if scan.kind else ""
    head = f"*Scan {escape(scan.name)}* ({kind}{runtime_text(scan)})"
    run = scan.last_run
    if run is None:
        return f"{head}: never run"
    parts = [head + ": last run " + escape(run.status or "unknown")]
    if (ended := _when(run.end_time)) is not None:
        parts[0] += f" {slack_date(ended, now)}"
    history = next((f for f in report.findings if f.check in BACKGROUND and f.scan == scan.name), None)
    evidence: Mapping[str, Any] = history.evidence if history is not None else {}
    failures = evidence.get("consecutiveFailures")
    since = _when(evidence.get("causeSince")) or _when(evidence.get("failingSince"))
    if isinstance(failures, int) and failures > 1 and since is not None:
        parts.append(f"failing since {slack_date(since, now)} ({failures} failed runs in a row)")
    success = evidence.get("lastSuccess")
    if isinstance(success, dict) and (ok := _when(success.get("endTime"))) is not None:
        parts.append(f"last success {slack_date(ok, now)}")
    elif isinstance(failures, int) and failures > 0:
        parts.append("no success in the history")
    lines = [" · ".join(parts)]
    if run.error and (run.status or "").lower() != "succeeded":
        error = truncate(linkify(run.error.strip()), ERROR_LIMIT)
        lines.append(f"Error: {error}")
        if run.section:
            lines.append(f"Most likely explained by {doc_link(report.docs_base, run.section)}")
    return truncate("\n".join(lines), TEXT_LIMIT)


def _scan_errors(report: Report) -> list[str]:
    """The scans' error texts (shown once in the intro), longest first, to cut from other findings."""
    found = {s.last_run.error.strip() for s in report.scans if s.last_run and s.last_run.error}
    return sorted((e for e in found if len(e) >= 40), key=len, reverse=True)


def problem_blocks(finding: Finding, report: Report, errors: Iterable[str] = ()) -> list[BlockDict]:
    """A divider; the status, check and cause; the detail summarised; the fix; the guide; Show evidence."""
    title = truncate(linkify(" ".join(finding.title.split())), TITLE_LIMIT)
    where = f" · scan {escape(finding.scan)}" if finding.scan else ""
    text = f"{mark(finding.status)} · {escape(finding.check)}{where}\n*{title}*"
    detail = finding.detail
    for error in errors:
        detail = detail.replace(error, "(the scan's error, quoted above)")
    if detail.strip():
        text += "\n" + truncate(linkify(detail), DETAIL_LIMIT)
    blocks = [DividerBlock().to_dict()]
    blocks += [section(chunk) for chunk in split_text(text, TEXT_LIMIT)]
    blocks += fix_blocks(finding.fix)
    notes = [f"{doc_link(report.docs_base, finding.section)} · {escape(finding.check)}"]
    blocks.append(context(*notes))
    if finding.evidence:
        value = evidence_value(report, finding)
        button = ButtonElement(text="Show evidence", action_id=EVIDENCE_ACTION_ID, value=value)
        blocks.append(ActionsBlock(elements=[button]).to_dict())
    return blocks


def fix_blocks(steps: list[str]) -> list[BlockDict]:
    """The fix: prose steps as text (their URLs link), each command as a code block to copy."""
    steps = [s for s in steps if s.strip()]
    if not steps:
        return []
    numbered = len(steps) > 1
    blocks: list[BlockDict] = []
    prose: list[str] = ["*Fix*"]
    for i, step in enumerate(steps, 1):
        number = f"{i}. " if numbered else ""
        if fixes.is_command(step):
            prose.append(f"{number}Run:")
            head = "\n".join(prose)
            chunks = code_blocks(step, TEXT_LIMIT - len(head) - 1)
            blocks.append(section(f"{head}\n{chunks[0]}"))
            blocks += [section(chunk) for chunk in chunks[1:]]
            prose = []
        else:
            prose.append(number + escape(" ".join(step.split())))
    if prose:
        blocks.append(section("\n".join(prose)))
    return blocks


def linkify(text: str) -> str:
    """Untrusted text escaped, each ARM resource id shown as its name linked to the Azure portal, wire
    timestamps in the reader's time zone, and a GUID repeated after its first mention shortened
    (`a364a7de…`)."""
    out: list[str] = []
    seen: set[str] = set()
    last = 0
    for match in _ARM_ID.finditer(text):
        rid = match.group().rstrip(".")
        out.append(_guids(escape(text[last : match.start()]), seen))
        name = rid.rstrip("/").rsplit("/", 1)[-1] or rid
        out.append(f"<{escape_url(portal_url(rid))}|{escape(name)}>")
        last = match.start() + len(rid)
    out.append(_guids(escape(text[last:]), seen))
    return "".join(out)


def _guids(escaped: str, seen: set[str]) -> str:
    def localise(match: re.Match[str]) -> str:
        when = _when(match.group())
        return slack_date(when) if when is not None else match.group()

    escaped = _ISO_TIME.sub(localise, escaped)

    def shorten(match: re.Match[str]) -> str:
        guid = match.group().lower()
        if guid in seen:
            return match.group()[:8] + "…"
        seen.add(guid)
        return match.group()

    return _GUID.sub(shorten, escaped)


def doc_link(docs_base: str, section_anchor: str) -> str:
    """`<url|Guide: Permission the credential on the data source>`: the guide's own heading."""
    url = escape_url(doc_url(docs_base, section_anchor))
    return f"<{url}|Guide: {escape(section_title(section_anchor))}>"


def _unchecked_blocks(report: Report) -> list[BlockDict]:
    """ "2 checks could not run", each with what the bot lacked: not counted as problems."""
    found = unchecked(report)
    if not found:
        return []
    noun = "check" if len(found) == 1 else "checks"
    lines = [f"{mark(Status.UNKNOWN)} · {len(found)} {noun} could not run (not counted as problems)"]
    for f in found:
        where = f" [{escape(f.scan)}]" if f.scan else ""
        reason = " ".join(f.detail.split())
        lines.append(
            truncate(f"• *{escape(f.check)}*{where}: {escape(f.title)}. {linkify(reason)}", TEXT_LIMIT // 4)
        )
    return [DividerBlock().to_dict(), *[section(c) for c in split_text("\n".join(lines), TEXT_LIMIT)]]


def _quiet_blocks(report: Report) -> list[BlockDict]:
    """Passed and not-applicable checks on one line: `✔ PASS: reader-role, … · – N/A: key-vault-secret, …`."""
    several = len(report.scans) > 1
    parts = []
    for status in (Status.PASS, Status.SKIPPED):
        names = [
            escape(label(f.check, f.scan if several else None)) for f in quiet(report) if f.status is status
        ]
        if names:
            parts.append(f"{MARKS[status]} {WORDS[status]}: {', '.join(dict.fromkeys(names))}")
    if not parts:
        return []
    return [DividerBlock().to_dict(), context(truncate(" · ".join(parts), QUIET_LIMIT))]


def changes_text(changes: Changes, report: Report, *, requester: str | None = None) -> str:
    """What a Re-check or a new check found changed, in words:

    "Fixed: contoso-pv can read blobs in stsalesadls. The last scan run predates the fix: run the scan to
    confirm." / "Changed: source-access (weekly) FAIL → WARN: …" / "New: …" / "No change (checked by
    @dana)". A fail that became a warn is one change. Background checks (the scan's runs) are not compared.
    """
    now = report.started_at
    if requester:
        head = f"*Re-checked by <@{escape(requester)}>* {slack_date(now, now)}"
    elif changes.since is not None:
        head = f"*Since the last check* ({slack_date(changes.since, now)})"
    else:
        head = "*Since the previous check*"
    lines = [head]
    items = changes.items or _items_from_labels(changes)
    for item in items:
        lines += _change_lines(item, report)
    still = [i for i in items if i.after is not None and i.before is i.after]
    if not any(i.before is not i.after for i in items):
        who = f" (checked by <@{escape(requester)}>)" if requester else ""
        lines.append(
            f"No change{who}: " + _still_names(still)
            if still
            else f"No change{who}: no problems, then or now."
        )
    elif still:
        lines.append("Still there: " + _still_names(still))
    if any(i.after is None for i in items) and _last_run_failed(report):
        lines.append("The last scan run predates the fix: run the scan to confirm.")
    if changes.partial:
        lines.append(
            "_(the previous report had more problems than the button could carry: some 'new' may be old)_"
        )
    return truncate("\n".join(lines), TEXT_LIMIT)


def _items_from_labels(changes: Changes) -> list[Change]:
    """A `Changes` built without items (an older caller): words from its labels alone."""
    out = [Change(x, None, Status.FAIL, None) for x in changes.fixed]
    out += [Change(x, None, None, Status.FAIL) for x in changes.new]
    return out


def _still_names(items: list[Change]) -> str:
    names = [f"{WORDS[i.after]} {_name(i)}" for i in items if i.after is not None]
    return truncate(", ".join(names) + ".", 600)


def _current(report: Report, item: Change) -> Finding | None:
    same = [f for f in report.findings if f.check == item.check and (f.scan or None) == item.scan]
    same.sort(key=lambda f: -(f.status.severity if f.status.severity is not None else -1))
    return same[0] if same else None


def _change_lines(item: Change, report: Report) -> list[str]:
    now = _current(report, item)
    name = _name(item)
    title = escape(" ".join(now.title.split())) if now is not None else ""
    said = f"{title} ({name})" if title else name
    if item.before is not None and item.after is None:
        if now is not None and now.status is Status.PASS:
            return [f"{MARKS[Status.PASS]} *Fixed:* {said}."]
        return [f"{MARKS[Status.PASS]} *Fixed:* {name} is no longer a problem."]
    if item.before is None and item.after is not None:
        return [f"{MARKS[item.after]} *New {WORDS[item.after]}:* {said}"]
    if item.before is not item.after and item.before is not None and item.after is not None:
        arrow = f"{WORDS[item.before]} → {WORDS[item.after]}"
        return [f"{MARKS[item.after]} *Changed* ({arrow}): {said}"]
    return []


def _last_run_failed(report: Report) -> bool:
    return any(s.last_run is not None and (s.last_run.status or "").lower() == "failed" for s in report.scans)


def changes_message(
    changes: Changes, report: Report, *, rerun_value: str, requester: str | None = None
) -> Message:
    """The reply a Re-check posts (the findings above are edited in place): what changed, and Re-check."""
    text = changes_text(changes, report, requester=requester)
    blocks = [section(text), ActionsBlock(elements=[rerun_button(rerun_value)]).to_dict()]
    plain = text.splitlines()[1] if len(text.splitlines()) > 1 else text
    return {"text": fallback(f"{escape(report.source.name)}: {plain}"), "blocks": blocks}


def evidence_value(report: Report, finding: Finding) -> str:
    """The Show evidence button's value: which finding of the stored report to show."""
    same = [f for f in report.findings if f.check == finding.check and f.scan == finding.scan]
    index = next((i for i, f in enumerate(same) if f is finding), 0)
    data = {
        "v": EVIDENCE_VERSION,
        "a": report.account[:256],
        "s": report.source.name[:256],
        "k": finding.check[:100],
        "c": (finding.scan or "")[:256],
        "i": index,
    }
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def evidence_view(finding: Mapping[str, Any], *, checked_at: datetime | None) -> dict[str, Any]:
    """A modal with one finding of a stored report (`Report.to_json()` shape): its title, the full
    detail, the fix as stored, and the evidence as JSON, every string escaped."""
    title = escape(" ".join(str(finding.get("title") or "").split()))
    status = _status(finding.get("status"))
    scan = finding.get("scan")
    where = f" · scan {escape(str(scan))}" if scan else ""
    when = f" · as of the check {slack_date(checked_at)}" if checked_at is not None else ""
    blocks = [
        section(
            f"{mark(status)} · {escape(str(finding.get('check') or ''))}{where}\n*{truncate(title, 500)}*"
        ),
        context(f"Evidence the bot decided on{when}"),
    ]
    detail = str(finding.get("detail") or "")
    if detail.strip():
        blocks += [section(c) for c in split_text(linkify(detail), TEXT_LIMIT)]
    evidence = finding.get("evidence")
    if isinstance(evidence, dict) and evidence:
        pretty = json.dumps(evidence, indent=1, ensure_ascii=False, default=str)
        blocks += [section(c) for c in code_blocks(pretty, TEXT_LIMIT)]
    if len(blocks) > MODAL_BLOCKS:
        blocks = [
            *blocks[: MODAL_BLOCKS - 1],
            context("…cut: the full report is `purview-bot check --format json`"),
        ]
    view = View(
        type="modal",
        title=truncate("Evidence", MODAL_TITLE),
        close="Close",
        blocks=blocks,
    )
    return view.to_dict()


def evidence_text(finding: Mapping[str, Any], *, checked_at: datetime | None) -> str:
    """The same as a short ephemeral text, when a modal cannot be opened (the click's trigger expired)."""
    evidence = finding.get("evidence")
    pretty = json.dumps(
        evidence if isinstance(evidence, dict) else {}, indent=1, ensure_ascii=False, default=str
    )
    when = f" (as of {utc_text(checked_at)})" if checked_at is not None else ""
    head = f"*{escape(' '.join(str(finding.get('title') or '').split()))}*{when}"
    return truncate(head + "\n" + code_blocks(pretty, TEXT_LIMIT - len(head) - 2)[0], TEXT_LIMIT)


def _status(value: object) -> Status:
    try:
        return Status(str(value))
    except ValueError:
        return Status.UNKNOWN


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


def rerun_block(value: str) -> BlockDict:
    """An actions block with the Re-check button alone; `value` from handlers.render.changes.rerun_value."""
    return ActionsBlock(elements=[rerun_button(value)]).to_dict()


def _name(item: Change) -> str:
    """`source-access, scan weekly`: a compared problem by its check (and scan), escaped."""
    return escape(f"{item.check}, scan {item.scan}" if item.scan else item.check)
