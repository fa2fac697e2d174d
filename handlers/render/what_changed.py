""" "What changed": the report's changes as Block Kit and text (issue 11).

A likely trigger reads as one sentence beside the finding it explains:

    stsalesadls · role assignment Storage Blob Data Reader for contoso-pv deleted by bob@contoso.com
    at 2026-11-21 18:03 UTC — 8 h before the first failed run

The rest of the window is a short timeline ("3 more changes: …"); a read the bot could not make is one
`unknown` line. Every word from Azure (resource names, callers, operation labels) is escaped.

Entry points for the report and the automatic post (wired by the lead):
- `what_changed_blocks(report)`: the thread's "What changed" part (empty list when nothing to say).
- `trigger_blocks(report)`: the first screen of an automatic post: only the likely triggers (or []).
- `changes_message(report, days)`: the whole answer to `/purview-check changes SOURCE [7d]`.
- `text_lines(report)`: plain lines for the terminal and for message fallbacks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

from checks.changes.record import RESOURCE_CHANGE, SECRET_VERSION, UNKNOWN, Change
from checks.model import Finding, Report
from handlers.render.escape import escape, escape_url, truncate
from handlers.render.times import slack_date, utc_text

BlockDict = dict[str, Any]
TEXT_LIMIT = 3000
TIMELINE_SHOWN = 5
"""Changes told one per line after the likely triggers; more are counted, the JSON keeps them all."""
PROPERTIES_SHOWN = 3
PORTAL = "https://portal.azure.com/#@/resource{id}"
ACTIVITY_LOG_PORTAL = "https://portal.azure.com/#view/Microsoft_Azure_ActivityLog/ActivityLogBlade"


def _section(text: str) -> BlockDict:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, TEXT_LIMIT))).to_dict()


def _context(text: str) -> BlockDict:
    return ContextBlock(elements=[MarkdownTextObject(text=truncate(text, TEXT_LIMIT))]).to_dict()


def _resource(change: Change) -> str:
    """The resource's name, linked to its portal page where the id is known."""
    name = escape(change.resource or "(resource)")
    target = change.resource_id.split("/providers/Microsoft.Authorization/")[0] if change.resource_id else ""
    return (
        f"<{escape_url(PORTAL.format(id=target))}|{name}>" if target.startswith("/subscriptions/") else name
    )


def _when(change: Change, now: datetime | None, *, slack: bool) -> str:
    if change.at is None:
        return "at an unknown time"
    return f"at {slack_date(change.at, now) if slack else utc_text(change.at, now)}"


def _who(change: Change) -> str:
    if change.kind == SECRET_VERSION:
        return ""
    if change.caller_name and change.caller and change.caller_name != change.caller:
        return f" by {change.caller_name} ({change.caller})"
    return f" by {change.who}"


def sentence(change: Change, now: datetime | None = None, *, slack: bool = True) -> str:
    """One change as a sentence (mrkdwn, escaped when `slack`; plain text otherwise)."""
    if change.kind == UNKNOWN:
        return f"unknown: {escape(change.summary) if slack else change.summary}"
    clean = escape if slack else (lambda text: text)
    what = clean(change.summary)
    if change.properties and change.kind != RESOURCE_CHANGE:  # before → after, where Azure recorded it
        shown = "; ".join(p.text() for p in change.properties[:PROPERTIES_SHOWN])
        more = (
            f"; {len(change.properties) - PROPERTIES_SHOWN} more"
            if len(change.properties) > PROPERTIES_SHOWN
            else ""
        )
        what = f"{what} ({clean(shown + more)})"
    if change.attempted:
        what = f"attempted ({change.status.lower()}): {what}"
    resource = _resource(change) if slack else (change.resource or "(resource)")
    text = f"{resource} · {what}{clean(_who(change))} {_when(change, now, slack=slack)}"
    return f"{text} — {change.relation}" if change.relation else text


def _trigger_text(change: Change, now: datetime | None) -> str:
    scan = f" (scan {escape(change.scan)})" if change.scan else ""
    finding = f"*Likely trigger* of `{change.finding}`{scan}" if change.finding else "*Likely trigger*"
    return f"{finding}\n{sentence(change, now)}"


def _parts(report: Report) -> tuple[list[Change], list[Change], list[Change]]:
    triggers = [c for c in report.changes if c.likely_trigger]
    unknown = [c for c in report.changes if c.kind == UNKNOWN]
    rest = [c for c in report.changes if not c.likely_trigger and c.kind != UNKNOWN]
    return triggers, unknown, rest


def _timeline(rest: list[Change], now: datetime | None, *, shown: int, more_only: bool) -> str:
    """`3 more changes:` and one line each (newest first), the overflow counted."""
    if not rest:
        return ""
    word = "more " if more_only else ""
    head = f"{len(rest)} {word}change{'s' if len(rest) != 1 else ''} in the window:"
    lines = [f"• {sentence(c, now)}" for c in rest[:shown]]
    if len(rest) > shown:
        lines.append(f"• … and {len(rest) - shown} more (the report's JSON lists them all)")
    return "\n".join([head, *lines])


def trigger_texts(report: Report, now: datetime | None = None, *, of: Finding | None = None) -> list[str]:
    """Each likely trigger as mrkdwn ("*Likely trigger* of `source-access` …"); [] when none. With `of`
    (the finding a first screen leads with), only the triggers of that finding: a first screen tells
    one story, the thread tells the rest."""
    triggers, _, _ = _parts(report)
    if of is not None:
        triggers = [c for c in triggers if c.finding == of.check and c.scan in (None, of.scan)]
    return [_trigger_text(c, now or report.started_at) for c in triggers]


def trigger_blocks(
    report: Report, now: datetime | None = None, *, of: Finding | None = None
) -> list[BlockDict]:
    """For a first screen (the verdict, an automatic post): one section per likely trigger of `of`."""
    return [_section(text) for text in trigger_texts(report, now, of=of)]


def what_changed_blocks(
    report: Report, now: datetime | None = None, *, shown: int = TIMELINE_SHOWN
) -> list[BlockDict]:
    """The report's "What changed" part: triggers, then the timeline and any read the bot could not
    make; [] when the report carries no changes at all (e.g. an older stored report)."""
    if not report.changes:
        return []
    at = now or report.started_at
    triggers, unknown, rest = _parts(report)
    blocks: list[BlockDict] = [_section("*What changed* since the last good scan")]
    blocks += [_section(_trigger_text(c, at)) for c in triggers]
    timeline = _timeline(rest, at, shown=shown, more_only=bool(triggers))
    if timeline:
        blocks.append(_section(timeline))
    for line in unknown:
        blocks.append(_context(f"? {sentence(line, at)}"))
    blocks.append(_context(f"From the Azure Activity Log: <{ACTIVITY_LOG_PORTAL}|open it in the portal>"))
    return blocks


def changes_message(report: Report, days: int | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The answer to `/purview-check changes SOURCE [7d]`: every change of the window, triggers first."""
    at = now or report.started_at
    span = f"the last {days} days" if days else "since the last good scan"
    title = f"*What changed* on {escape(report.source.name)} ({escape(report.account)}), {span}"
    blocks: list[BlockDict] = [_section(title)]
    triggers, unknown, rest = _parts(report)
    blocks += [_section(_trigger_text(c, at)) for c in triggers]
    timeline = _timeline(rest, at, shown=20, more_only=bool(triggers))
    if timeline:
        blocks.append(_section(timeline))
    blocks += [_context(f"? {sentence(u, at)}") for u in unknown]
    if not report.changes:
        blocks.append(_section("No change recorded on the resources this source depends on."))
    lines = text_lines(report, now=at, shown=20) or ["No change recorded on its resources."]
    text = "\n".join([f"What changed on {report.source.name} ({report.account}), {span}:", *lines])
    # the fallback is mrkdwn too (notifications, clients without blocks): Azure's words escaped there as well
    return {"text": truncate(escape(text), 4000), "blocks": blocks[:50]}


def text_lines(report: Report, now: datetime | None = None, *, shown: int = TIMELINE_SHOWN) -> list[str]:
    """Plain text (terminal, fallbacks): `likely trigger: …` lines, then the timeline; [] when nothing."""
    if not report.changes:
        return []
    at = now or report.started_at
    triggers, unknown, rest = _parts(report)
    lines = [f"likely trigger of {c.finding}: {sentence(c, at, slack=False)}" for c in triggers]
    lines += [sentence(c, at, slack=False) for c in unknown]
    lines += [sentence(c, at, slack=False) for c in rest[:shown]]
    if len(rest) > shown:
        lines.append(f"… and {len(rest) - shown} more")
    return lines
