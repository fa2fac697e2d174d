"""Find the bot's report in a thread (for `recheck`): its metadata names the diagnosis, its Re-run
button holds the previous problems. Read with `conversations.replies` (the *:history scopes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from handlers.render.blocks import RERUN_ACTION_ID
from handlers.render.changes import RerunRequest, parse_rerun_value
from handlers.slack.posting import REPORT_EVENT

PAGE = 200
MAX_PAGES = 5


@dataclass(frozen=True)
class FoundReport:
    source: str
    account: str
    scan: str | None
    summary_ts: str  # the message carrying the metadata: the one to update
    previous: RerunRequest | None  # from the latest Re-run button, when there is one


async def find_report(
    client: AsyncWebClient, *, channel: str, thread_ts: str, bot_user_id: str | None
) -> FoundReport | None:
    """The latest report of the bot in the thread, or None."""
    messages = await _replies(client, channel, thread_ts)
    summary: dict[str, Any] | None = None
    previous: RerunRequest | None = None
    for message in reversed(messages):  # newest first
        if bot_user_id and message.get("user") != bot_user_id:
            continue
        if previous is None:
            previous = _rerun_request(message)
        metadata = message.get("metadata") or {}
        if metadata.get("event_type") == REPORT_EVENT and isinstance(metadata.get("event_payload"), dict):
            summary = message
            break
    if summary is None:
        return None
    payload = summary["metadata"]["event_payload"]
    source, account = payload.get("source"), payload.get("account")
    if not isinstance(source, str) or not source or not isinstance(account, str) or not account:
        return None
    scan = payload.get("scan")
    return FoundReport(
        source=source,
        account=account,
        scan=scan if isinstance(scan, str) and scan else None,
        summary_ts=str(summary.get("ts")),
        previous=previous,
    )


async def _replies(client: AsyncWebClient, channel: str, thread_ts: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        kwargs: dict[str, Any] = {"channel": channel, "ts": thread_ts, "limit": PAGE}
        kwargs["include_all_metadata"] = True
        if cursor:
            kwargs["cursor"] = cursor
        response = await client.conversations_replies(**kwargs)
        messages += [m for m in response.get("messages") or [] if isinstance(m, dict)]
        cursor = ((response.get("response_metadata") or {}).get("next_cursor")) or None
        if not cursor:
            break
    return messages


def _rerun_request(message: dict[str, Any]) -> RerunRequest | None:
    """The Re-run button's request in this message, if it has a valid one."""
    for block in message.get("blocks") or []:
        if not isinstance(block, dict) or block.get("type") != "actions":
            continue
        for element in block.get("elements") or []:
            if isinstance(element, dict) and element.get("action_id") == RERUN_ACTION_ID:
                try:
                    return parse_rerun_value(element.get("value"))
                except ValueError:
                    return None
    return None
