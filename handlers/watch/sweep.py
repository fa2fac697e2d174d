"""One sweep of one account: take over claims a stopped process left, read every scan's latest runs, post
the new failures through the pipeline, move the cursors and say "recovered" where a scan succeeds again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
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
    open_threads,
    run_by_id,
    run_status,
)
from handlers.watch.pipeline import Candidate, Posted, Side, Sides, where_of
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
            candidates, unfinished = await self._resume(
                name, reclaimed, read.scans, watches, open_threads(cursors)
            )
            await self._finish_threads(name, unfinished, now)
            new_failures = 0
            for state in read.scans:
                found = await self._claim_new(
                    name, state, cursors.get((state.source, state.scan)), watches, now
                )
                if found is not None:
                    candidates.append(found)
                    new_failures += len(found.refs)
            posted, posts = await self._pipeline.deliver(candidates, now, open_threads(cursors))
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
        threads: Mapping[ScanKey, ThreadRef],
    ) -> tuple[list[Candidate], list[_Unfinished]]:
        """Reclaimed runs, per scan, channel by channel (the scan's routed channel and its watchers): a
        channel whose post is recorded is done; else its history is searched for the parent. Found with
        replies: recorded, done. Found with an empty thread (the process stopped between the two): its
        report is still to be posted in that thread (the `_Unfinished`). Not found: posted again (the
        candidate's `pending` channels). A scan with an open thread: a repeat goes in that thread, whose
        parent may be older than the history searched, so the parent is read directly first."""
        states = {(s.source.lower(), s.scan.lower()): s for s in scans}
        by_key: dict[ScanKey, Candidate] = {}
        for record in records:
            ref = record.ref
            key = ScanKey(ref.source, ref.scan)
            since = record.claimed_at - HISTORY_MARGIN
            if key in by_key:
                candidate = by_key[key]
                candidate.add([ref])
                candidate.since = min(since, candidate.since or since)
                continue
            state = states.get((ref.source.lower(), ref.scan.lower()))
            run = run_by_id(state.runs if state else [], ref.run_id) or {
                "id": ref.run_id,
                "status": record.status,
                "endTime": record.end_time.isoformat() if record.end_time else None,
            }
            collection = state.collection if state else None
            failure = Failure(name, ref.source, collection, ref.scan, run, (ref.run_id,))
            by_key[key] = Candidate([ref], failure, [], [], since=since)
        resumed: list[Candidate] = []
        unfinished: dict[ThreadRef, _Unfinished] = {}
        for key, candidate in by_key.items():
            failure = candidate.failure
            targets = self._router.channels(Place(name, failure.collection, failure.source), watches)
            if not targets:
                log.info("sweep of %s: no channel routed for %s/%s; not posted", name, *key)
                continue
            candidate.targets = targets
            candidate.settled = {
                p.channel: where_of(p)
                for p in await self._store.run_posts(candidate.refs)
                if p.channel in targets
            }
            run_ids = [r.run_id for r in candidate.refs]
            await self._find_repeats(candidate, threads.get(key), run_ids)
            for channel in targets:
                if channel in candidate.settled:
                    continue
                since = candidate.since or utc_now() - self._config.stale_after
                found = await self._publisher.find_posted(channel, run_ids, since)
                parent = next((found[r.lower()] for r in run_ids if r.lower() in found), None)
                if parent is None:
                    candidate.pending.append(channel)
                elif parent.has_replies:
                    await self._pipeline.settle([candidate], channel, ThreadRef(channel, parent.ts))
                    log.info(
                        "sweep of %s: run(s) %s were posted in %s before a restart (%s)",
                        name,
                        ", ".join(run_ids),
                        channel,
                        parent.ts,
                    )
                else:
                    thread = ThreadRef(channel, parent.ts)
                    unfinished.setdefault(thread, _Unfinished(thread)).members[key] = candidate
            resumed.append(candidate)
        return resumed, list(unfinished.values())

    async def _find_repeats(self, candidate: Candidate, thread: ThreadRef | None, run_ids: list[str]) -> None:
        """Settle each channel whose open thread's parent already names one of the runs in its metadata
        (a repeat posted there before a restart: the reply comes before the parent's edit)."""
        if thread is None:
            return
        wanted = {r.lower() for r in run_ids}
        named: dict[ThreadRef, bool] = {}
        for channel, post in (await self._pipeline.threads_of(candidate, thread)).items():
            where = where_of(post)
            if channel in candidate.settled or channel not in candidate.targets or where is None:
                continue
            if where not in named:
                runs = await self._publisher.parent_runs(where.channel, where.ts)
                named[where] = bool(wanted & {r.lower() for r in runs})
            if named[where]:
                await self._pipeline.settle([candidate], channel, where, post.note)
                log.info(
                    "sweep of %s: the repeat of run(s) %s was posted in %s before a restart (%s)",
                    candidate.failure.account,
                    ", ".join(run_ids),
                    where.channel,
                    where.ts,
                )

    async def _finish_threads(self, name: str, unfinished: list[_Unfinished], now: datetime) -> None:
        """Diagnose the runs of each parent found with an empty thread, post the report in that thread,
        then record the runs posted there.

        A thread whose first reply cannot be posted stays claimed: a later sweep takes it over once stale
        and finds the parent again.
        """
        for parent in unfinished:
            thread = parent.thread
            candidates = list(parent.members.values())
            failures = list(await asyncio.gather(*(self._pipeline.diagnosed(c) for c in candidates)))
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
            for candidate in candidates:
                candidate.fingerprint = cause.fingerprint if cause else candidate.fingerprint
            await self._pipeline.settle(candidates, thread.channel, thread)
            log.info(
                "sweep of %s: run(s) %s were posted before a restart without their report; "
                "the report is now in the thread of %s in %s",
                name,
                ", ".join(r.run_id for c in candidates for r in c.refs),
                thread.ts,
                thread.channel,
            )

    async def _claim_new(
        self, name: str, state: ScanState, cursor: ScanCursor | None, watches: list[Watch], now: datetime
    ) -> Candidate | None:
        failed = [r for r in runs_since(state.runs, cursor) if self._pipeline.is_news(r, now)]
        if not failed:
            return None
        channels = self._router.channels(Place(name, state.collection, state.source), watches)
        if not channels:
            log.info("sweep of %s: no channel routed for %s/%s; not posted", name, state.source, state.scan)
            return None
        return await self._pipeline.claim(name, state.source, state.collection, state.scan, failed, channels)

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
                    primary = ThreadRef(cursor.thread_channel, cursor.thread_ts)
                    await self._recovered_elsewhere(name, state, primary, newest, now)
                    cursor = replace(cursor, thread_channel=None, thread_ts=None)
                    self._metrics.watch_post("recovery")
                    recovered = 1
        if posted is not None:
            cursor = replace(cursor, thread_channel=posted.channel, thread_ts=posted.ts)
        if cursor != (old or blank):
            await self._store.save_cursor(cursor)
        return recovered

    async def _recovered_elsewhere(
        self, name: str, state: ScanState, primary: ThreadRef, newest: Json, now: datetime
    ) -> None:
        """ "recovered" in the failure's other threads too: each watching channel's (or its fallback's)."""
        try:
            posts = await self._store.thread_posts(name, primary.channel, primary.ts)
        except Exception:
            log.exception("watcher: the other threads of %s/%s could not be read", state.source, state.scan)
            return
        threads = {
            where
            for p in posts
            if p.ref.source.lower() == state.source.lower()
            and p.ref.scan.lower() == state.scan.lower()
            and (where := where_of(p)) is not None
            and where != primary
        }
        for thread in sorted(threads):
            try:
                await self._publisher.recovered(
                    thread.channel, thread.ts, state.source, state.scan, newest, now
                )
            except Exception:
                log.exception(
                    "watcher: the recovery reply for %s/%s in %s failed",
                    state.source,
                    state.scan,
                    thread.channel,
                )
