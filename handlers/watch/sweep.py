"""One sweep of one account: take over claims a stopped process left, read every scan's latest runs, post
the new failures through the pipeline, move the cursors and say "recovered" where a scan succeeds again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from checks.accounts import AccountRef
from checks.gateways.api import Json
from handlers.ports import RunRecord, ScanCursor, Watch
from handlers.watch.config import WatchMetrics, utc_now
from handlers.watch.model import (
    SUCCEEDED,
    Failure,
    Publisher,
    ScanKey,
    ThreadRef,
    cursor_at,
    finished_runs,
    run_by_id,
    run_status,
)
from handlers.watch.pipeline import Candidate, Posted, Side, Sides
from handlers.watch.reads import ScanState, read_account
from handlers.watch.routing import Place

log = logging.getLogger(__name__)

HISTORY_MARGIN = timedelta(minutes=1)  # the post may be stamped a little before or after its claim


@dataclass(frozen=True)
class SweepResult:
    account: str
    scans: int = 0
    new_failures: int = 0
    posts: int = 0
    recoveries: int = 0
    unreadable: int = 0


@dataclass
class _Unfinished:
    """A parent a stopped process posted whose thread is still empty: its runs' report goes there."""

    thread: ThreadRef
    members: dict[ScanKey, Candidate] = field(default_factory=dict)


def runs_since(runs: list[Json], cursor: ScanCursor | None) -> list[Json]:
    """The finished runs newer than the cursor's (all of them when the cursor's run left the page)."""
    finished = finished_runs(runs)
    last = (cursor.last_run_id or "").lower() if cursor else ""
    for index, run in enumerate(finished):
        if str(run["id"]).lower() == last:
            return finished[:index]
    return finished


class Sweeper(Side):
    def __init__(self, sides: Sides, *, publisher: Publisher, metrics: WatchMetrics) -> None:
        super().__init__(sides)
        self._publisher = publisher
        self._metrics = metrics

    async def sweep(self, account: str) -> SweepResult:
        """One sweep of one account (the caller holds its lease); raises when Purview's data sources or
        the store cannot be read."""
        name = AccountRef(account).name
        async with self._locks(name):
            now = self._clock()
            reclaimed = await self._reclaim(name)
            read = await read_account(self._purview(account), self._config.concurrency)
            cursors = await self._store.cursors(name)
            watches = await self._store.watches()
            threads: Posted = {}
            candidates, unfinished = await self._resume(name, reclaimed, read.scans, watches, threads)
            threads.update(await self._finish_threads(name, unfinished, now))
            new_failures = 0
            for state in read.scans:
                found = await self._claim_new(
                    name, state, cursors.get((state.source, state.scan)), watches, now
                )
                if found is not None:
                    candidates.append(found)
                    new_failures += len(found.refs)
            posted, posts = await self._pipeline.deliver(candidates, now)
            threads.update(posted)
            recoveries = 0
            for state in read.scans:
                recoveries += await self._advance(
                    name, state, cursors, threads.get(ScanKey(state.source, state.scan)), now
                )
        result = SweepResult(name, len(read.scans), new_failures, posts, recoveries, read.unreadable)
        log.info("sweep of %s: %d scans, %d new failures, %d posts", name, result.scans, new_failures, posts)
        return result

    async def _reclaim(self, name: str) -> list[RunRecord]:
        """Claims a dead process left unposted, taken over (atomically: one replica gets each)."""
        stale_before = utc_now() - self._config.stale_after  # the store stamps claims with its clock
        taken = []
        for record in await self._store.unposted(name):
            if record.claimed_at >= stale_before:
                continue  # someone is still working on it
            if await self._store.reclaim(record.ref, holder=self._config.holder, stale_before=stale_before):
                taken.append(record)
        if taken:
            log.warning("sweep of %s: took over %d unposted claim(s) of a stopped process", name, len(taken))
        return taken

    async def _resume(
        self,
        name: str,
        records: list[RunRecord],
        scans: list[ScanState],
        watches: list[Watch],
        threads: Posted,
    ) -> tuple[list[Candidate], list[_Unfinished]]:
        """Reclaimed runs: marked posted when the channel already has their parent and its thread has
        replies; when the parent is there with an empty thread (the process stopped between the two), its
        report is still to be posted in that thread (the `_Unfinished`); else posted again (the candidates).
        """
        states = {(s.source.lower(), s.scan.lower()): s for s in scans}
        pending: dict[ScanKey, Candidate] = {}
        unfinished: dict[ThreadRef, _Unfinished] = {}
        for record in records:
            ref = record.ref
            state = states.get((ref.source.lower(), ref.scan.lower()))
            collection = state.collection if state else None
            channel = self._router.channel(Place(name, collection, ref.source), watches)
            if channel is None:
                continue
            since = record.claimed_at - HISTORY_MARGIN
            found = (await self._publisher.find_posted(channel, [ref.run_id], since)).get(ref.run_id.lower())
            if found is not None and found.has_replies:
                await self._store.mark_posted([ref], channel=channel, message_ts=found.ts, fingerprint=None)
                threads[ScanKey(ref.source, ref.scan)] = ThreadRef(channel, found.ts)
                log.info("sweep of %s: run %s was posted before a restart (%s)", name, ref.run_id, found.ts)
                continue
            run = run_by_id(state.runs if state else [], ref.run_id) or {
                "id": ref.run_id,
                "status": record.status,
                "endTime": record.end_time.isoformat() if record.end_time else None,
            }
            key = ScanKey(ref.source, ref.scan)
            if found is None:
                group = pending
            else:
                parent = ThreadRef(channel, found.ts)
                group = unfinished.setdefault(parent, _Unfinished(parent)).members
            if key in group:
                group[key].add([ref])
                continue
            failure = Failure(name, ref.source, collection, ref.scan, run, (ref.run_id,))
            group[key] = Candidate([ref], failure, channel)
        return list(pending.values()), list(unfinished.values())

    async def _finish_threads(self, name: str, unfinished: list[_Unfinished], now: datetime) -> Posted:
        """Diagnose the runs of each parent found with an empty thread, post the report in that thread,
        then record the runs posted there. Returns the parent per scan finished.

        A thread whose first reply cannot be posted stays claimed: a later sweep takes it over once stale
        and finds the parent again.
        """
        posted: Posted = {}
        members = [(parent, candidate) for parent in unfinished for candidate in parent.members.values()]
        if not members:
            return posted
        diagnosed = await asyncio.gather(*(self._pipeline.diagnosed(c) for _, c in members))
        by_parent: dict[ThreadRef, list[tuple[Candidate, Failure]]] = {}
        for (parent, candidate), failure in zip(members, diagnosed, strict=True):
            by_parent.setdefault(parent.thread, []).append((candidate, failure))
        for thread, group in by_parent.items():
            failures = [f for _, f in group]
            causes = {c.fingerprint: c for c in (self._pipeline.cause(f) for f in failures)}
            cause = next(iter(causes.values())) if len(causes) == 1 else None
            try:
                await self._publisher.post_thread(
                    thread.channel, thread.ts, failures, cause.finding if cause else None, now
                )
            except Exception:
                log.exception(
                    "watcher: the report under %s in %s (posted before a restart) failed",
                    thread.ts,
                    thread.channel,
                )
                continue
            refs = [ref for candidate, _ in group for ref in candidate.refs]
            fingerprint = cause.fingerprint if cause else None
            await self._store.mark_posted(
                refs, channel=thread.channel, message_ts=thread.ts, fingerprint=fingerprint
            )
            for candidate, _ in group:
                posted[candidate.key] = thread
            log.info(
                "sweep of %s: run(s) %s were posted before a restart without their report; "
                "the report is now in the thread of %s",
                name,
                ", ".join(r.run_id for r in refs),
                thread.ts,
            )
        return posted

    async def _claim_new(
        self, name: str, state: ScanState, cursor: ScanCursor | None, watches: list[Watch], now: datetime
    ) -> Candidate | None:
        failed = [r for r in runs_since(state.runs, cursor) if self._pipeline.is_news(r, now)]
        if not failed:
            return None
        channel = self._router.channel(Place(name, state.collection, state.source), watches)
        if channel is None:
            log.info("sweep of %s: no channel routed for %s/%s; not posted", name, state.source, state.scan)
            return None
        return await self._pipeline.claim(name, state.source, state.collection, state.scan, failed, channel)

    async def _advance(
        self,
        name: str,
        state: ScanState,
        cursors: dict[tuple[str, str], ScanCursor],
        posted: ThreadRef | None,
        now: datetime,
    ) -> int:
        """Move the scan's cursor to its newest finished run; "recovered" when that run succeeded after
        a posted failure. Saved only when changed. Returns 1 when a recovery was posted."""
        blank = ScanCursor(name, state.source, state.scan)
        old = cursors.get((state.source, state.scan))
        cursor = old or blank
        recovered = 0
        finished = finished_runs(state.runs)
        if finished:
            newest = finished[0]
            ok = run_status(newest) == SUCCEEDED
            cursor = cursor_at(cursor, newest)
            if ok and posted is None and cursor.thread_channel and cursor.thread_ts:
                try:
                    await self._publisher.recovered(
                        cursor.thread_channel, cursor.thread_ts, state.source, state.scan, newest, now
                    )
                except Exception:
                    log.exception("watcher: the recovery reply for %s/%s failed", state.source, state.scan)
                else:
                    cursor = replace(cursor, thread_channel=None, thread_ts=None)
                    self._metrics.watch_post("recovery")
                    recovered = 1
        if posted is not None:
            cursor = replace(cursor, thread_channel=posted.channel, thread_ts=posted.ts)
        if cursor != (old or blank):
            await self._store.save_cursor(cursor)
        return recovered
