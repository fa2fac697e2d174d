"""The watcher's Slack side: post a failure group (parent, then its thread), reply "recovered", and find a
parent already posted before a restart.

Every message goes through the per-channel pacer. Once a parent exists the group counts as posted: a
thread reply that fails is logged, not retried by posting the parent again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from checks.model import Finding
from handlers.posting import Message, post_message
from handlers.watch_posts import (
    ChannelPacer,
    Failure,
    failure_metadata,
    failure_parent,
    metadata_runs,
    recovered_message,
    report_thread,
    storm_list,
    storm_parent,
)

log = logging.getLogger(__name__)

HISTORY_PAGES = 5  # of 200 messages: how far back a restarted process looks for its own post


class WatchPublisher:
    def __init__(self, client: AsyncWebClient, pacer: ChannelPacer, *, history_pages: int = HISTORY_PAGES):
        self._client = client
        self._pacer = pacer
        self._history_pages = history_pages

    async def _post(
        self,
        channel: str,
        message: Message,
        *,
        thread_ts: str | None = None,
        metadata: dict[str, object] | None = None,
    ) -> str:
        await self._pacer.wait(channel)
        return await post_message(
            self._client,
            channel=channel,
            text=message["text"],
            blocks=message.get("blocks"),
            thread_ts=thread_ts,
            metadata=metadata,
        )

    async def post_group(
        self, channel: str, failures: Sequence[Failure], cause: Finding | None, now: datetime
    ) -> str:
        """One parent for the group and its thread; returns the parent's ts.

        Raises (SlackApiError, ChannelUnreachable) only when the parent could not be posted.
        """
        first = failures[0]
        run_ids = [run_id for f in failures for run_id in f.run_ids]
        if len(failures) > 1 and cause is not None:
            parent = storm_parent(failures, cause, now)
            thread = [*storm_list(failures, now), *report_thread(first)]
        else:
            parent = failure_parent(first, cause, now)
            thread = report_thread(first)
        ts = await self._post(channel, parent, metadata=failure_metadata(first.account, run_ids))
        for message in thread:
            try:
                await self._post(channel, message, thread_ts=ts)
            except Exception:
                log.exception("watcher: a thread reply under %s in %s failed", ts, channel)
        return ts

    async def recovered(
        self, channel: str, thread_ts: str, source: str, scan: str, run: dict[str, object], now: datetime
    ) -> None:
        await self._post(channel, recovered_message(source, scan, run, now), thread_ts=thread_ts)

    async def find_posted(self, channel: str, run_ids: Iterable[str], oldest: datetime) -> dict[str, str]:
        """Run id → ts of a parent in `channel` (since `oldest`) whose metadata names the run.

        A history that cannot be read counts as nothing found: posting twice beats not posting.
        """
        wanted = {r.lower() for r in run_ids}
        found: dict[str, str] = {}
        cursor: str | None = None
        for _ in range(self._history_pages):
            try:
                page = await self._client.conversations_history(
                    channel=channel,
                    oldest=f"{oldest.timestamp():.6f}",
                    include_all_metadata=True,
                    limit=200,
                    cursor=cursor,
                )
            except SlackApiError as error:
                log.warning(
                    "watcher: cannot read the history of %s: %s", channel, error.response.get("error")
                )
                return found
            for message in page.get("messages") or []:
                for run_id in metadata_runs(message):
                    if run_id.lower() in wanted:
                        found.setdefault(run_id.lower(), str(message.get("ts")))
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if cursor is None or wanted <= set(found):
                break
        return found
