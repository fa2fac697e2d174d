"""The watcher's Slack side: post a failure group (parent, then its thread), reply "recovered", find a
parent already posted before a restart, and post the report into such a parent's thread when the
restart finds it empty.

Every message goes through the per-channel pacer. Once a parent exists the group counts as posted: a
thread reply that fails is logged, not retried by posting the parent again.

A channel that refuses the parent itself (archived, not found, the bot removed and unable to join) raises
`ChannelRefused` with Slack's reason; the watcher then posts the group in its fallback channel with
`undelivered`, and the parent there starts with why (its metadata names the channels it stands in for,
`event_payload.for`, so that a restart finds it), or notes it in the thread of the parent that channel
already has (`post_note`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from checks.model import Finding
from handlers.render.escape import code
from handlers.render.summary import fallback, section
from handlers.render.watch_posts import (
    failure_metadata,
    failure_parent,
    group_thread,
    metadata_runs,
    payload_of,
    recovered_edit,
    recovered_message,
    repeat_edit,
    repeat_message,
    storm_parent,
    with_note,
)
from handlers.slack.posting import (
    ChannelUnreachable,
    Message,
    history,
    post_message,
    slack_error,
    update_message,
)
from handlers.slack.watch_commands import channel_ref
from handlers.watch.model import ChannelRefused, Failure, PostedParent, Undelivered

log = logging.getLogger(__name__)

HISTORY_PAGES = 5  # of 200 messages: how far back a restarted process looks for its own post
STANDS_IN_FOR = "for"  # the metadata payload key naming the channels a fallback parent stands in for
# chat.postMessage errors about the channel itself: posting there again will not help
CHANNEL_REFUSALS = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "team_access_not_granted",
        "ekm_access_denied",
        "access_denied",
    }
)


def refusal(error: BaseException) -> str | None:
    """Slack's reason when `error` is the channel refusing the bot's posts, else None."""
    if isinstance(error, ChannelUnreachable):
        cause = error.__cause__
        reason = slack_error(cause) if isinstance(cause, SlackApiError) else "channel_not_found"
        if reason in ("channel_not_found", "not_in_channel"):
            return reason
        return f"not_in_channel, and joining failed: {reason}"  # conversations.join's error
    if isinstance(error, SlackApiError) and slack_error(error) in CHANNEL_REFUSALS:
        return slack_error(error)
    return None


def undelivered_text(undelivered: Sequence[Undelivered]) -> str:
    """ "<#C1> (`is_archived`) and <#C2> (`channel_not_found`)"."""
    parts = [f"{channel_ref(u.channel)} ({code(u.reason)})" for u in undelivered]
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def stands_in_for(message: dict[str, object]) -> list[str]:
    """The channels a fallback parent stands in for (empty for a channel's own parent)."""
    metadata = message.get("metadata")
    payload = metadata.get("event_payload") if isinstance(metadata, dict) else None
    channels = payload.get(STANDS_IN_FOR) if isinstance(payload, dict) else None
    return [str(c) for c in channels] if isinstance(channels, list) else []


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
        self,
        channel: str,
        failures: Sequence[Failure],
        cause: Finding | None,
        now: datetime,
        *,
        undelivered: Sequence[Undelivered] = (),
        mention: str | None = None,
    ) -> str:
        """One parent for the group and its thread; returns the parent's ts. With `undelivered`, the
        parent stands in for those channels and starts with why; `mention`: a route's user group id, named
        on this new failure only.

        Raises only when the parent could not be posted: `ChannelRefused` when the channel refuses the
        bot's posts (see `refusal`), else the SlackApiError.
        """
        first = failures[0]
        run_ids = [run_id for f in failures for run_id in f.run_ids]
        if len(failures) > 1 and cause is not None:
            parent = storm_parent(failures, cause, now, mention=mention)
        else:
            parent = failure_parent(first, cause, now, mention=mention)
        metadata = failure_metadata(first.account, run_ids, failures)
        if undelivered:
            why = (
                f"⚠️ Posted here because {undelivered_text(undelivered)} refused it: invite the bot there, "
                "or remove the watch (`/purview-check watches --all` lists every watch and how to remove it)."
            )
            parent = with_note(parent, why)
            metadata["event_payload"][STANDS_IN_FOR] = [u.channel for u in undelivered]
        try:
            ts = await self._post(channel, parent, metadata=metadata)
        except Exception as error:
            reason = refusal(error)
            if reason is not None:
                raise ChannelRefused(channel, reason) from error
            raise
        await self._replies(channel, ts, group_thread(failures, cause, now))
        return ts

    async def post_note(self, channel: str, thread_ts: str, undelivered: Sequence[Undelivered]) -> None:
        """In the thread of a failure this channel has: it was meant for those channels too."""
        text = (
            f"⚠️ This failure was also meant for {undelivered_text(undelivered)}, which refused it: invite "
            "the bot there, or remove the watch (`/purview-check watches --all` lists every watch and how "
            "to remove it)."
        )
        await self._post(channel, {"text": fallback(text), "blocks": [section(text)]}, thread_ts=thread_ts)

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
        """ "recovered" in the scan's thread, then the parent says so (which closes the thread); an edit
        that fails is logged: the reply is what counts."""
        await self._post(channel, recovered_message(source, scan, run, now), thread_ts=thread_ts)
        try:
            await edit_parent(
                self._client, channel, thread_ts, lambda m: recovered_edit(m, source, scan, run, now)
            )
        except Exception:
            log.exception("watcher: the parent %s in %s could not say it recovered", thread_ts, channel)

    async def post_repeat(
        self, channel: str, ts: str, failures: Sequence[Failure], cause: Finding | None, now: datetime
    ) -> None:
        """A repeat failure of the scans of the open thread under `ts`: a short reply there, then the
        parent says "still failing since …, N runs" and its metadata names the new runs. Raises only
        when the reply could not be posted (then nothing changed); a failed edit is logged."""
        for failure in failures:
            await self._post(channel, repeat_message(failure, cause, now), thread_ts=ts)
        try:
            await edit_parent(self._client, channel, ts, lambda m: repeat_edit(m, failures, cause, now))
        except Exception:
            log.exception("watcher: the parent %s in %s could not say it is still failing", ts, channel)

    async def find_posted(
        self, channel: str, run_ids: Iterable[str], oldest: datetime, *, meant_for: str | None = None
    ) -> dict[str, PostedParent]:
        """Run id (lower case) → the parent in `channel` (since `oldest`) whose metadata names the run,
        with whether its thread has replies (Slack's `reply_count` on history messages): the channel's
        own parent, or with `meant_for` the fallback parent posted there for that channel.

        A history that cannot be read counts as nothing found: posting twice beats not posting.
        """
        wanted = {r.lower() for r in run_ids}
        found: dict[str, PostedParent] = {}
        messages = history(self._client, channel, oldest=oldest.timestamp(), pages=self._history_pages)
        async for message in messages:
            standing_in = stands_in_for(message)
            if (meant_for is None and standing_in) or (
                meant_for is not None and meant_for not in standing_in
            ):
                continue
            for run_id in metadata_runs(message):
                if run_id.lower() in wanted:
                    parent = PostedParent(str(message.get("ts")), _reply_count(message) > 0)
                    found.setdefault(run_id.lower(), parent)
            if wanted <= set(found):
                break
        return found

    async def parent_runs(self, channel: str, ts: str) -> list[str]:
        """The run ids the parent under `ts` names in its metadata, read directly (its thread may be
        older than any history window). Unreadable counts as none: posting twice beats not posting."""
        try:
            message = await read_message(self._client, channel, ts)
        except Exception:
            log.warning("watcher: the parent %s in %s could not be read", ts, channel, exc_info=True)
            return []
        return metadata_runs(message) if message is not None else []


Edit = Callable[[dict[str, Any]], "tuple[Message, dict[str, Any]] | None"]
Kept = Callable[[dict[str, Any], Message, dict[str, Any]], bool]
"""Whether the parent read back (first argument) still has what an edit wrote (its message, metadata)."""


async def read_message(client: AsyncWebClient, channel: str, ts: str) -> dict[str, Any] | None:
    """One top-level message as Slack has it, with its metadata (`conversations.history` bounded to its
    ts); None when it is not there."""
    response = await client.conversations_history(
        channel=channel, latest=ts, oldest=ts, inclusive=True, limit=1, include_all_metadata=True
    )
    for message in response.get("messages") or []:
        if isinstance(message, dict) and str(message.get("ts")) == ts:
            return message
    return None


EDIT_ATTEMPTS = 3  # merges of one edit into a parent someone else (the watcher, a click) edits too


async def edit_parent(
    client: AsyncWebClient, channel: str, ts: str, edit: Edit, kept: Kept | None = None
) -> bool:
    """Read the parent, apply `edit` (None: leave it), write it back with the metadata `edit` gives
    (every edit keeps the run ids). False when the parent is gone or not one to edit (before any write
    of ours). Raises when Slack refuses the read or the update.

    Slack has no compare-and-set: the watcher's edits and an Acknowledge click, each computed from its own
    read, may land one just after the other and drop what the first wrote. So the parent is read back:
    when `kept` (default: the metadata's run ids and fields) says the write is missing, the edit is merged
    again into what is there (bounded)."""
    still_there = kept or metadata_kept
    for attempt in range(EDIT_ATTEMPTS):
        message = await read_message(client, channel, ts)  # right before the update: the latest edit
        edited = edit(message) if message is not None else None
        if edited is None:
            if message is None:
                log.warning("the parent %s in %s is gone; not edited", ts, channel)
            return attempt > 0  # gone (or no longer one to edit) after a write of ours: it was shown
        new, metadata = edited
        await update_message(
            client, channel=channel, ts=ts, text=new["text"], blocks=new["blocks"], metadata=metadata
        )
        after = await read_message(client, channel, ts)
        if after is None or still_there(after, new, metadata):
            return True
        log.info("the parent %s in %s was edited during our edit: merging again", ts, channel)
    log.warning("the parent %s in %s kept changing: an edit may be missing", ts, channel)
    return True


def metadata_kept(after: dict[str, Any], _: Message, written: dict[str, Any]) -> bool:
    """Whether the parent read back still has what the edit wrote in its metadata: its run ids and
    every field (a later write from an older read drops them)."""
    ours = written.get("event_payload") or {}
    theirs = payload_of(after) or {}
    if not {str(r) for r in ours.get("runs") or []} <= {str(r) for r in theirs.get("runs") or []}:
        return False
    return set(ours) <= set(theirs)


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
