"""The watcher's Slack side: post a failure group (parent, then its thread), reply "recovered", find a
parent already posted before a restart, and post the report into such a parent's thread when the
restart finds it empty.

Every message goes through the per-channel pacer. Once a parent exists the group counts as posted: a
thread reply that fails is logged, not retried by posting the parent again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from checks.model import Finding
from handlers.render.watch_posts import (
    failure_metadata,
    failure_parent,
    group_thread,
    metadata_runs,
    recovered_message,
    storm_parent,
)
from handlers.slack.posting import Message, post_message
from handlers.watch.model import Failure, PostedParent

log = logging.getLogger(__name__)

HISTORY_PAGES = 5  # of 200 messages: how far back a restarted process looks for its own post


@dataclass
class ChannelPacer:
    """At most one message per `interval` seconds per channel, in the order callers arrived: automatic
    posts stay at about one message per second per channel (Slack's posting limit), on top of
    slack-sdk's retry after a 429.

    The clock and the sleep are injected so a test can check the pacing without waiting for it.
    """

    interval: float = 1.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _next: dict[str, float] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def wait(self, channel: str) -> None:
        """Return when a message may be sent to `channel`; the slot is taken on return."""
        lock = self._locks.setdefault(channel, asyncio.Lock())
        async with lock:
            delay = self._next.get(channel, float("-inf")) - self.clock()
            if delay > 0:
                await self.sleep(delay)
            self._next[channel] = max(self.clock(), self._next.get(channel, float("-inf"))) + self.interval


class WatchPublisher:
    """The watcher's `Publisher` (handlers.watch.model) on Slack's Web API."""

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
        else:
            parent = failure_parent(first, cause, now)
        ts = await self._post(channel, parent, metadata=failure_metadata(first.account, run_ids))
        await self._replies(channel, ts, group_thread(failures, cause, now))
        return ts

    async def post_thread(
        self, channel: str, ts: str, failures: Sequence[Failure], cause: Finding | None, now: datetime
    ) -> None:
        """The group's thread under a parent posted earlier (found after a restart with no reply).

        Raises (SlackApiError, ChannelUnreachable) only when the first reply could not be posted: the
        thread is still empty then, and a later attempt may fill it.
        """
        first, *rest = group_thread(failures, cause, now)
        await self._post(channel, first, thread_ts=ts)
        await self._replies(channel, ts, rest)

    async def _replies(self, channel: str, ts: str, messages: Iterable[Message]) -> None:
        for message in messages:
            try:
                await self._post(channel, message, thread_ts=ts)
            except Exception:
                log.exception("watcher: a thread reply under %s in %s failed", ts, channel)

    async def recovered(
        self, channel: str, thread_ts: str, source: str, scan: str, run: dict[str, object], now: datetime
    ) -> None:
        await self._post(channel, recovered_message(source, scan, run, now), thread_ts=thread_ts)

    async def find_posted(
        self, channel: str, run_ids: Iterable[str], oldest: datetime
    ) -> dict[str, PostedParent]:
        """Run id (lower case) → the parent in `channel` (since `oldest`) whose metadata names the run,
        with whether its thread has replies (Slack's `reply_count` on history messages).

        A history that cannot be read counts as nothing found: posting twice beats not posting.
        """
        wanted = {r.lower() for r in run_ids}
        found: dict[str, PostedParent] = {}
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
                        parent = PostedParent(str(message.get("ts")), _reply_count(message) > 0)
                        found.setdefault(run_id.lower(), parent)
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if cursor is None or wanted <= set(found):
                break
        return found


def _reply_count(message: dict[str, object]) -> int:
    """Slack's `reply_count` of a history message (absent: no thread)."""
    count = message.get("reply_count")
    if isinstance(count, bool):
        return 0
    if isinstance(count, int):
        return count
    if isinstance(count, str) and count.isdigit():
        return int(count)
    return 0
