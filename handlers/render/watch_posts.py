"""What the watcher posts on its own: the parent of a failure or a storm, the storm's list, "recovered".

Pure functions returning `{"text", "blocks"}` payloads; every name and error text from Purview is escaped.
The parent carries Slack metadata naming the runs it reports, so that a process restarted between
posting and recording the post finds the message instead of posting it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from checks.classify import classify_run, error_text
from checks.gateways.api import Json
from checks.model import Finding
from checks.times import parse_time
from handlers.render.changes import rerun_value
from handlers.render.escape import code, escape, truncate
from handlers.render.findings import thread_messages
from handlers.render.summary import Message, context, fallback, section
from handlers.render.texts import failure_message
from handlers.render.times import utc_text
from handlers.watch.model import Failure

FAILURE_EVENT = "purview_scan_failure"
ERROR_LIMIT = 300  # characters of an unclassified error in a parent
PARENT_LIMIT = 2900


def at_time(value: object, now: datetime) -> str:
    """`08:14 UTC` today, `2026-11-27 14:04 UTC` another day, `an unknown time` without one."""
    when = parse_time(value)
    return "an unknown time" if when is None else utc_text(when, now)


def error_summary(run: Json) -> str:
    """The run's error, classified (`Purview lacks data access (`AuthorizationPermissionMismatch`)`), or
    its first line when no rule knows it; escaped."""
    found = classify_run(run)
    if found is not None:
        return f"{escape(found.reason)} ({code(found.matched)})"
    text = error_text(run)
    if not text:
        return f"status {code(str(run.get('status') or 'unknown'))}, no error message"
    return truncate(escape(text.splitlines()[0]), ERROR_LIMIT)


def failure_metadata(account: str, run_ids: Sequence[str]) -> dict[str, Any]:
    return {"event_type": FAILURE_EVENT, "event_payload": {"account": account, "runs": list(run_ids)}}


def metadata_runs(message: Json) -> list[str]:
    """The run ids a message's watcher metadata names (none for any other message)."""
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != FAILURE_EVENT:
        return []
    runs = (metadata.get("event_payload") or {}).get("runs")
    return [str(r) for r in runs] if isinstance(runs, list) else []


def _where(failure: Failure) -> str:
    collection = f" · collection {code(failure.collection)}" if failure.collection else ""
    return f"Purview account {code(failure.account)}{collection}"


def _scan_of(failure: Failure) -> str:
    return f"Scan {code(failure.scan)} of {code(failure.source)}"


def failure_parent(failure: Failure, cause: Finding | None, now: datetime) -> Message:
    """ "Scan weekly of sales-adls failed at 08:14 UTC: Purview lacks data access (…)", and the cause."""
    head = (
        f"🔴 {_scan_of(failure)} failed at {at_time(failure.run.get('endTime'), now)}: "
        f"{error_summary(failure.run)}"
    )
    lines = [head]
    if cause is not None:
        lines.append(f"*Cause:* {escape(cause.title)}")
    elif failure.diagnosis_error:
        lines.append(f"The diagnosis could not finish: {truncate(escape(failure.diagnosis_error), 300)}")
    runs = f" · run {code(str(failure.run.get('id') or '?'))}"
    text = truncate("\n".join(lines), PARENT_LIMIT)
    blocks = [section(text), context(f"{_where(failure)}{runs} · the diagnosis is in the thread")]
    return {"text": fallback(text), "blocks": blocks}


def storm_parent(failures: Sequence[Failure], cause: Finding, now: datetime) -> Message:
    """ "12 scans failed: Purview's managed identity … has Get but not List on secrets in Key Vault …"."""
    head = f"🔴 {len(failures)} scans failed: {escape(cause.title)}"
    first = failures[0]
    accounts = sorted({f.account for f in failures})
    where = ", ".join(code(a) for a in accounts)
    detail = (
        f"Purview account{'s' if len(accounts) > 1 else ''} {where} · "
        f"the affected scans and the diagnosis of {_scan_of(first).lower()} are in the thread"
    )
    text = truncate(head, PARENT_LIMIT)
    return {"text": fallback(text), "blocks": [section(text), context(detail)]}


def storm_list(failures: Sequence[Failure], now: datetime) -> list[Message]:
    """The affected scans, one line each, packed into as few messages as Slack's limits allow; the error
    is said once when every run has the same one."""
    errors = {error_summary(f.run) for f in failures}
    shared = errors.pop() if len(errors) == 1 else None
    lines = []
    for f in failures:
        collection = f" (collection {code(f.collection)})" if f.collection else ""
        error = "" if shared else f": {error_summary(f.run)}"
        lines.append(f"• {_scan_of(f)}{collection} failed at {at_time(f.run.get('endTime'), now)}{error}")
    head = [f"*Affected scans ({len(failures)})*"] + ([f"All with: {shared}"] if shared else [])
    messages: list[Message] = []
    page = head
    for line in lines:
        if len("\n".join([*page, line])) > PARENT_LIMIT and len(page) > len(head):
            messages.append(_list_message(page))
            page = head = ["*Affected scans (continued)*"]
        page = [*page, line]
    messages.append(_list_message(page))
    return messages


def _list_message(lines: list[str]) -> Message:
    text = truncate("\n".join(lines), PARENT_LIMIT)
    return {"text": fallback(text), "blocks": [section(text)]}


def report_thread(failure: Failure) -> list[Message]:
    """The diagnosis as the slash command shows it, with the Re-run button; or why there is none."""
    if failure.report is None:
        return [failure_message(failure.source, failure.diagnosis_error or "no diagnosis")]
    report = failure.report
    return thread_messages(report, rerun_value=rerun_value(report, scan=failure.scan))


def recovered_message(source: str, scan: str, run: Json, now: datetime) -> Message:
    """The reply in a failure's thread once the scan's newest run succeeded."""
    text = (
        f"✅ Scan {code(scan)} of {code(source)} recovered at {at_time(run.get('endTime'), now)} "
        f"(run {code(str(run.get('id') or '?'))} succeeded)."
    )
    return {"text": fallback(text), "blocks": [section(text)]}


def group_thread(failures: Sequence[Failure], cause: Finding | None, now: datetime) -> list[Message]:
    """What goes in a group's thread: the storm's list of scans (several failures with one cause), then
    the report of the first failure."""
    if len(failures) > 1 and cause is not None:
        return [*storm_list(failures, now), *report_thread(failures[0])]
    return report_thread(failures[0])
