"""The watcher's domain: a failure to post, the keys it is filed under, and the port it posts through.

No Slack here: `Publisher` is implemented by `handlers.slack.watch_publisher.WatchPublisher`, handed in
by the composition root.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import NamedTuple, Protocol

from checks.gateways.api import Json
from checks.model import Finding, Report
from checks.times import parse_time
from handlers.ports import ScanCursor

SUCCEEDED = "succeeded"


class ScanKey(NamedTuple):
    """A scan of an account, as the watcher files cursors, claims and threads."""

    source: str
    scan: str


class ThreadRef(NamedTuple):
    """A posted parent message: where its thread is."""

    channel: str
    ts: str


@dataclass(frozen=True)
class Failure:
    """One scan's new failure as the watcher posts it: the newest failed run and its diagnosis."""

    account: str  # the account's name
    source: str
    collection: str | None
    scan: str
    run: Json  # the newest new failed run (wire JSON)
    run_ids: tuple[str, ...]  # every new failed run of the scan this post covers
    report: Report | None = None
    diagnosis_error: str | None = None  # why there is no report

    @property
    def key(self) -> ScanKey:
        return ScanKey(self.source, self.scan)


@dataclass(frozen=True)
class Undelivered:
    """A channel that refused a post for a channel-level reason (archived, not found, the bot removed and
    unable to join), and Slack's reason: said in the fallback post that carries the failure instead."""

    channel: str
    reason: str


class ChannelRefused(Exception):
    """The channel itself refuses the bot's posts (see `Undelivered`): retrying there will not help."""

    def __init__(self, channel: str, reason: str) -> None:
        super().__init__(f"{channel}: {reason}")
        self.channel = channel
        self.reason = reason


@dataclass(frozen=True)
class PostedParent:
    """A parent found in a channel's history: its ts, and whether its thread has any reply."""

    ts: str
    has_replies: bool


class Publisher(Protocol):
    """Where the watcher's posts go (Slack, through `handlers.slack.watch_publisher`)."""

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
        """One parent for the group and its thread; returns the parent's ts. Raises only when the
        parent could not be posted: `ChannelRefused` when the channel itself refuses it. `undelivered`:
        the group is posted here instead of those channels; the parent says why. `mention`: the user
        group id a route names, mentioned on this new failure (never on a repeat)."""
        ...

    async def post_repeat(
        self, channel: str, ts: str, failures: Sequence[Failure], cause: Finding | None, now: datetime
    ) -> None:
        """Repeat failures of the scans whose thread under `ts` is open: a short reply there, and the
        parent edited ("still failing since …, N runs"), its metadata naming the new runs. Raises only
        when the reply could not be posted."""
        ...

    async def post_note(self, channel: str, thread_ts: str, undelivered: Sequence[Undelivered]) -> None:
        """A reply in a failure's thread: the failure was meant for those channels too, which refused it."""
        ...

    async def post_thread(
        self, channel: str, ts: str, failures: Sequence[Failure], cause: Finding | None, now: datetime
    ) -> None:
        """The group's thread under a parent posted earlier; raises when the first reply fails."""
        ...

    async def recovered(
        self, channel: str, thread_ts: str, source: str, scan: str, run: Json, now: datetime
    ) -> None:
        """ "recovered" in the scan's thread, and the parent edited to say so (the thread is closed)."""
        ...

    async def find_posted(
        self, channel: str, run_ids: Iterable[str], oldest: datetime, *, meant_for: str | None = None
    ) -> dict[str, PostedParent]:
        """Run id (lower case) → the parent in `channel` (since `oldest`) whose metadata names it: the
        channel's own parent, or with `meant_for` a fallback parent posted there for that channel."""
        ...

    async def parent_runs(self, channel: str, ts: str) -> list[str]:
        """The run ids the metadata of the parent under `ts` names (none when it is gone or unreadable):
        how a restart finds a repeat posted in a thread older than any history window."""
        ...


def run_status(run: Json) -> str:
    return str(run.get("status") or "").lower()


def finished_runs(runs: Iterable[Json]) -> list[Json]:
    """Runs with an end time and an id (a run in progress has neither status nor end for long)."""
    return [r for r in runs if r.get("id") and parse_time(r.get("endTime")) is not None]


def run_by_id(runs: Iterable[Json], run_id: str) -> Json | None:
    return next((r for r in runs if str(r.get("id", "")).lower() == run_id.lower()), None)


def cursor_at(cursor: ScanCursor, newest: Json) -> ScanCursor:
    """`cursor` moved to the scan's newest finished run: failing since the first failure in a row,
    nothing once a run succeeded."""
    ended = parse_time(newest.get("endTime"))
    ok = run_status(newest) == SUCCEEDED
    return replace(
        cursor,
        last_run_id=str(newest["id"]),
        last_status=str(newest.get("status") or ""),
        last_end_time=ended,
        failing_since=None if ok else (cursor.failing_since or ended),
    )


def open_threads(cursors: dict[tuple[str, str], ScanCursor]) -> dict[ScanKey, ThreadRef]:
    """Each scan's open failure thread (in its first channel), from the cursors."""
    return {
        ScanKey(source, scan): ThreadRef(cursor.thread_channel, cursor.thread_ts)
        for (source, scan), cursor in cursors.items()
        if cursor.thread_channel and cursor.thread_ts
    }
