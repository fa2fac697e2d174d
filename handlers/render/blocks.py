"""Reports as Slack Block Kit: one import for the handlers and the CLI (`--format blocks`).

The parent message (progress, then the verdict) is built in handlers.render.summary, the thread replies
in handlers.render.findings; all are pure functions returning payload dicts that slack_sdk validated.
"""

from __future__ import annotations

from typing import Any

from checks.model import Report
from handlers.render.changes import Changes, rerun_value
from handlers.render.findings import RERUN_ACTION_ID, pack, thread_messages
from handlers.render.summary import (
    BlockDict,
    Message,
    progress_blocks,
    progress_message,
    progress_text,
    summary_blocks,
    summary_message,
    summary_text,
    validate,
)

__all__ = [
    "RERUN_ACTION_ID",
    "BlockDict",
    "Message",
    "pack",
    "progress_blocks",
    "progress_message",
    "progress_text",
    "report_payload",
    "summary_blocks",
    "summary_message",
    "summary_text",
    "thread_messages",
    "validate",
]


def report_payload(
    report: Report, *, scan: str | None = None, changes: Changes | None = None
) -> dict[str, Any]:
    """`{"summary": Message, "thread": [Message, …]}`: everything the bot would post for `report`."""
    value = rerun_value(report, scan=scan)
    return {
        "summary": summary_message(report, rerun_value=value),
        "thread": thread_messages(report, rerun_value=value, changes=changes),
    }
