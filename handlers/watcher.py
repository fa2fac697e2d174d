"""The scan-failure watcher: notice failed scan runs, diagnose them, post each root cause once.

Runs reach one pipeline from two sides, a periodic sweep of each account and the alert webhook
(`runs_reported`): claim the run in the store (the unique key makes it exactly once across replicas and
both sides), diagnose it, group the diagnosed failures by root cause (handlers.storms) and post one parent
per cause and channel, then record the post. Which replica sweeps an account is decided by a lease in the
store; everything the watcher remembers is in the store, so any replica can take over. See
docs/watcher-contract.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from checks.classify import classify_run
from checks.errors import GatewayError
from checks.gateways.api import Json
from checks.model import Report
from handlers.alerts import AlertRun
from handlers.reporting import GRACE_SECONDS, account_name, reason_of
from handlers.routing import Place, Router
from handlers.service import DiagnosisService
from handlers.store import RunRecord, RunRef, ScanCursor, Store, Watch
from handlers.storms import Cause, cause_of
from handlers.sweep_reads import ScanReader, ScanState, collection_of, read_account
from handlers.watch_posts import Failure, parse_time
from handlers.watch_publish import WatchPublisher

log = logging.getLogger(__name__)

T = TypeVar("T")

SUCCEEDED = "succeeded"
HISTORY_MARGIN = timedelta(minutes=1)  # the post may be stamped a little before or after its claim


def default_holder() -> str:
    """Who holds claims and leases: unique per process, readable in the database."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def utc_now() -> datetime:
    return datetime.now(UTC)


class LeaseLostError(Exception):
    """The lease could not be renewed while work ran under it (another replica has it, or the store did
    not answer in time): the work was cancelled."""

    def __init__(self, lease: str) -> None:
        super().__init__(f"lost lease {lease}")
        self.lease = lease


@dataclass(frozen=True)
class WatchConfig:
    accounts: tuple[str, ...]  # as configured (names or ARM ids); the first is the webhook's default
    interval_seconds: float = 300.0
    statuses: frozenset[str] = frozenset({"failed"})  # lower case
    lookback: timedelta = timedelta(days=1)
    concurrency: int = 8
    deadline_seconds: float = 60.0
    holder: str = field(default_factory=default_holder)

    @property
    def stale_after(self) -> timedelta:
        """A claim not posted by then was left by a dead process."""
        return timedelta(seconds=2 * self.deadline_seconds)


@dataclass(frozen=True)
class SweepResult:
    account: str
    scans: int = 0
    new_failures: int = 0
    posts: int = 0
    recoveries: int = 0
    unreadable: int = 0


class WatchMetrics(Protocol):
    def sweep_done(self, account: str, ok: bool) -> None: ...
    def watch_post(self, kind: str) -> None:
        """kind: failure, storm, recovery."""
        ...

    def diagnosis(self, report: Report) -> None: ...
    def diagnosis_failed(self) -> None: ...


class NoMetrics:
    def sweep_done(self, account: str, ok: bool) -> None:
        pass

    def watch_post(self, kind: str) -> None:
        pass

    def diagnosis(self, report: Report) -> None:
        pass

    def diagnosis_failed(self) -> None:
        pass


@dataclass
class _Unfinished:
    """A parent a stopped process posted whose thread is still empty: its runs' report goes there."""

    channel: str
    ts: str
    members: dict[tuple[str, str], _Candidate] = field(default_factory=dict)  # by (source, scan)


@dataclass
class _Candidate:
    """A scan's claimed failed runs, waiting for their diagnosis and post."""

    refs: list[RunRef]
    failure: Failure
    channel: str
    seen: list[Json] = field(default_factory=list)  # the scan's runs as read (webhook: for a new cursor)

    @property
    def key(self) -> tuple[str, str]:
        return (self.failure.source, self.failure.scan)


def run_status(run: Json) -> str:
    return str(run.get("status") or "").lower()


def finished_runs(runs: Iterable[Json]) -> list[Json]:
    """Runs with an end time and an id (a run in progress has neither status nor end for long)."""
    return [r for r in runs if r.get("id") and parse_time(r.get("endTime")) is not None]


def runs_since(runs: Sequence[Json], cursor: ScanCursor | None) -> list[Json]:
    """The finished runs newer than the cursor's (all of them when the cursor's run left the page)."""
    finished = finished_runs(runs)
    last = (cursor.last_run_id or "").lower() if cursor else ""
    for index, run in enumerate(finished):
        if str(run["id"]).lower() == last:
            return finished[:index]
    return finished


class Watcher:
    """Sweeps, webhook intake and the lease loop; every dependency is passed in."""

    def __init__(
        self,
        *,
        config: WatchConfig,
        store: Store,
        purview: Callable[[str], ScanReader],
        service: DiagnosisService,
        publisher: WatchPublisher,
        router: Router,
        metrics: WatchMetrics | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._config = config
        self._store = store
        self._purview = purview
        self._service = service
        self._publisher = publisher
        self._router = router
        self._metrics: WatchMetrics = metrics or NoMetrics()
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def config(self) -> WatchConfig:
        return self._config

    def _lock(self, name: str) -> asyncio.Lock:
        """Sweep and webhook intake of one account take turns in this process (cursors stay coherent)."""
        return self._locks.setdefault(name.lower(), asyncio.Lock())

    # --- the sweep ---------------------------------------------------------------------------------

    async def sweep(self, account: str) -> SweepResult:
        """One sweep of one account (the caller holds its lease); raises when Purview's data sources or
        the store cannot be read."""
        name = account_name(account)
        async with self._lock(name):
            now = self._clock()
            reclaimed = await self._reclaim(name)
            read = await read_account(self._purview(account), self._config.concurrency)
            cursors = await self._store.cursors(name)
            watches = await self._store.watches()
            threads: dict[tuple[str, str], tuple[str, str]] = {}
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
            posted, posts = await self._deliver(candidates, now)
            threads.update(posted)
            recoveries = 0
            for state in read.scans:
                recoveries += await self._advance(
                    name, state, cursors, threads.get((state.source, state.scan)), now
                )
        result = SweepResult(name, len(read.scans), new_failures, posts, recoveries, read.unreadable)
        log.info("sweep of %s: %d scans, %d new failures, %d posts", name, result.scans, new_failures, posts)
        return result

    async def _reclaim(self, name: str) -> list[RunRecord]:
        """Claims a dead process left unposted, taken over (atomically: one replica gets each)."""
        stale_before = utc_now() - self._config.stale_after  # the store stamps claims with its clock
        taken = []
        for record in await self._store.unposted(name):
            claimed_at = (
                record.claimed_at if record.claimed_at.tzinfo else record.claimed_at.replace(tzinfo=UTC)
            )
            if claimed_at >= stale_before:
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
        threads: dict[tuple[str, str], tuple[str, str]],
    ) -> tuple[list[_Candidate], list[_Unfinished]]:
        """Reclaimed runs: marked posted when the channel already has their parent and its thread has
        replies; when the parent is there with an empty thread (the process stopped between the two), its
        report is still to be posted in that thread (the `_Unfinished`); else posted again (the candidates).
        """
        states = {(s.source.lower(), s.scan.lower()): s for s in scans}
        pending: dict[tuple[str, str], _Candidate] = {}
        unfinished: dict[tuple[str, str], _Unfinished] = {}
        for record in records:
            ref = record.ref
            state = states.get((ref.source.lower(), ref.scan.lower()))
            collection = state.collection if state else None
            channel = self._router.channel(Place(name, collection, ref.source), watches)
            if channel is None:
                continue
            since = record.claimed_at - HISTORY_MARGIN
            if record.claimed_at.tzinfo is None:
                since = since.replace(tzinfo=UTC)
            found = (await self._publisher.find_posted(channel, [ref.run_id], since)).get(ref.run_id.lower())
            if found is not None and found.has_replies:
                await self._store.mark_posted([ref], channel=channel, message_ts=found.ts, fingerprint=None)
                threads[(ref.source, ref.scan)] = (channel, found.ts)
                log.info("sweep of %s: run %s was posted before a restart (%s)", name, ref.run_id, found.ts)
                continue
            run = _run_in(state, ref.run_id) or {
                "id": ref.run_id,
                "status": record.status,
                "endTime": record.end_time.isoformat() if record.end_time else None,
            }
            key = (ref.source, ref.scan)
            if found is None:
                group = pending
            else:
                group = unfinished.setdefault((channel, found.ts), _Unfinished(channel, found.ts)).members
            if key in group:
                group[key].refs.append(ref)
                continue
            failure = Failure(name, ref.source, collection, ref.scan, run, (ref.run_id,))
            group[key] = _Candidate([ref], failure, channel)
        for candidate in [*pending.values(), *(c for u in unfinished.values() for c in u.members.values())]:
            ids = tuple(r.run_id for r in candidate.refs)
            candidate.failure = replace(candidate.failure, run_ids=ids)
        return list(pending.values()), list(unfinished.values())

    async def _finish_threads(
        self, name: str, unfinished: list[_Unfinished], now: datetime
    ) -> dict[tuple[str, str], tuple[str, str]]:
        """Diagnose the runs of each parent found with an empty thread, post the report in that thread,
        then record the runs posted there. Returns the parent (channel, ts) per (source, scan) finished.

        A thread whose first reply cannot be posted stays claimed: a later sweep takes it over once stale
        and finds the parent again.
        """
        threads: dict[tuple[str, str], tuple[str, str]] = {}
        members = [(parent, candidate) for parent in unfinished for candidate in parent.members.values()]
        if not members:
            return threads
        diagnosed = await asyncio.gather(*(self._diagnosed(c) for _, c in members))
        by_parent: dict[tuple[str, str], list[tuple[_Candidate, Failure]]] = {}
        for (parent, candidate), failure in zip(members, diagnosed, strict=True):
            by_parent.setdefault((parent.channel, parent.ts), []).append((candidate, failure))
        for (channel, ts), group in by_parent.items():
            failures = [f for _, f in group]
            causes = {c.fingerprint: c for c in (self._cause(f) for f in failures)}
            cause = next(iter(causes.values())) if len(causes) == 1 else None
            try:
                await self._publisher.post_thread(
                    channel, ts, failures, cause.finding if cause else None, now
                )
            except Exception:
                log.exception(
                    "watcher: the report under %s in %s (posted before a restart) failed", ts, channel
                )
                continue
            refs = [ref for candidate, _ in group for ref in candidate.refs]
            fingerprint = cause.fingerprint if cause else None
            await self._store.mark_posted(refs, channel=channel, message_ts=ts, fingerprint=fingerprint)
            for candidate, _ in group:
                threads[candidate.key] = (channel, ts)
            log.info(
                "sweep of %s: run(s) %s were posted before a restart without their report; "
                "the report is now in the thread of %s",
                name,
                ", ".join(r.run_id for r in refs),
                ts,
            )
        return threads

    def _is_news(self, run: Json, now: datetime) -> bool:
        ended = parse_time(run.get("endTime"))
        return (
            run_status(run) in self._config.statuses
            and ended is not None
            and ended >= now - self._config.lookback
        )

    async def _claim_new(
        self, name: str, state: ScanState, cursor: ScanCursor | None, watches: list[Watch], now: datetime
    ) -> _Candidate | None:
        failed = [r for r in runs_since(state.runs, cursor) if self._is_news(r, now)]
        if not failed:
            return None
        channel = self._router.channel(Place(name, state.collection, state.source), watches)
        if channel is None:
            log.info("sweep of %s: no channel routed for %s/%s; not posted", name, state.source, state.scan)
            return None
        return await self._claim(name, state.source, state.collection, state.scan, failed, channel)

    async def _claim(
        self, name: str, source: str, collection: str | None, scan: str, runs: list[Json], channel: str
    ) -> _Candidate | None:
        claimed: list[tuple[RunRef, Json]] = []
        for run in runs:
            ref = RunRef(name, source, scan, str(run["id"]))
            ended = parse_time(run.get("endTime"))
            status = str(run.get("status") or "")
            if await self._store.claim_run(ref, status=status, end_time=ended, holder=self._config.holder):
                claimed.append((ref, run))
        if not claimed:
            return None
        refs = [ref for ref, _ in claimed]
        failure = Failure(name, source, collection, scan, claimed[0][1], tuple(r.run_id for r in refs))
        return _Candidate(refs, failure, channel)

    # --- diagnose, group, post -----------------------------------------------------------------------

    async def _diagnosed(self, candidate: _Candidate) -> Failure:
        failure = candidate.failure
        try:
            async with asyncio.timeout(self._config.deadline_seconds + GRACE_SECONDS):
                report = await self._service.diagnose(
                    failure.source, account=failure.account, scan=failure.scan
                )
        except Exception as error:
            log.warning("watcher: diagnosis of %s/%s failed: %s", failure.source, failure.scan, error)
            self._metrics.diagnosis_failed()
            return replace(failure, diagnosis_error=reason_of(error, self._config.deadline_seconds))
        self._metrics.diagnosis(report)
        return replace(failure, report=report)

    @staticmethod
    def _cause(failure: Failure) -> Cause:
        """The failure's root cause (its storm fingerprint)."""
        classified = classify_run(failure.run)
        return cause_of(
            failure.report,
            run_key="/".join((failure.account, failure.source, failure.scan, *failure.run_ids)),
            scan=failure.scan,
            section=classified.section if classified else None,
        )

    async def _deliver(
        self, candidates: list[_Candidate], now: datetime
    ) -> tuple[dict[tuple[str, str], tuple[str, str]], int]:
        """Diagnose, group by (channel, root cause), post each group, record the posts.

        Returns the parent (channel, ts) per (source, scan) posted, and the number of parents.
        A group whose parent cannot be posted stays claimed: a later sweep takes it over once stale.
        """
        if not candidates:
            return {}, 0
        diagnosed = await asyncio.gather(*(self._diagnosed(c) for c in candidates))
        groups: dict[tuple[str, str], tuple[Cause, list[tuple[_Candidate, Failure]]]] = {}
        for candidate, failure in zip(candidates, diagnosed, strict=True):
            cause = self._cause(failure)
            groups.setdefault((candidate.channel, cause.fingerprint), (cause, []))[1].append(
                (candidate, failure)
            )
        by_channel: dict[str, list[tuple[Cause, list[tuple[_Candidate, Failure]]]]] = {}
        for (channel, _), group in groups.items():
            by_channel.setdefault(channel, []).append(group)
        results = await asyncio.gather(
            *(
                self._post_channel(channel, channel_groups, now)
                for channel, channel_groups in by_channel.items()
            )
        )
        threads: dict[tuple[str, str], tuple[str, str]] = {}
        posts = 0
        for posted, count in results:
            threads.update(posted)
            posts += count
        return threads, posts

    async def _post_channel(
        self, channel: str, groups: list[tuple[Cause, list[tuple[_Candidate, Failure]]]], now: datetime
    ) -> tuple[dict[tuple[str, str], tuple[str, str]], int]:
        threads: dict[tuple[str, str], tuple[str, str]] = {}
        posts = 0
        for cause, members in groups:
            failures = [f for _, f in members]
            try:
                ts = await self._publisher.post_group(channel, failures, cause.finding, now)
            except Exception:
                log.exception("watcher: posting %d failure(s) to %s failed", len(failures), channel)
                continue
            refs = [ref for candidate, _ in members for ref in candidate.refs]
            await self._store.mark_posted(refs, channel=channel, message_ts=ts, fingerprint=cause.fingerprint)
            self._metrics.watch_post("storm" if len(members) > 1 else "failure")
            posts += 1
            for candidate, _ in members:
                threads[candidate.key] = (channel, ts)
        return threads, posts

    # --- cursors and recovery --------------------------------------------------------------------------

    async def _advance(
        self,
        name: str,
        state: ScanState,
        cursors: dict[tuple[str, str], ScanCursor],
        posted: tuple[str, str] | None,
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
            ended = parse_time(newest.get("endTime"))
            cursor = replace(
                cursor,
                last_run_id=str(newest["id"]),
                last_status=str(newest.get("status") or ""),
                last_end_time=ended,
                failing_since=None if ok else (cursor.failing_since or ended),
            )
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
            cursor = replace(cursor, thread_channel=posted[0], thread_ts=posted[1])
        if cursor != (old or blank):
            await self._store.save_cursor(cursor)
        return recovered

    # --- the webhook -----------------------------------------------------------------------------------

    async def runs_reported(self, runs: Sequence[AlertRun]) -> None:
        """Runs an alert named: confirmed from Purview, then the sweep's claim → diagnose → post path."""
        by_account: dict[str, list[AlertRun]] = {}
        for run in runs:
            account = self._configured(run.account)
            if account is None:
                log.warning("alert for account %s, which is not configured: ignored", run.account)
                continue
            by_account.setdefault(account, []).append(run)
        for account, alerts in by_account.items():
            await self._intake(account, alerts)

    def _configured(self, requested: str | None) -> str | None:
        accounts = self._config.accounts
        if not requested:
            return accounts[0] if accounts else None
        for account in accounts:
            if requested.lower() in (account.lower(), account_name(account).lower()):
                return account
        return None

    async def _intake(self, account: str, alerts: list[AlertRun]) -> None:
        name = account_name(account)
        reader = self._purview(account)
        async with self._lock(name):
            now = self._clock()
            watches = await self._store.watches()
            pending: dict[tuple[str, str], _Candidate] = {}
            for alert in alerts:
                found = await self._confirm(name, reader, alert, watches, now)
                if found is None:
                    continue
                if found.key in pending:
                    merged = pending[found.key]
                    merged.refs.extend(found.refs)
                    merged.failure = replace(merged.failure, run_ids=tuple(r.run_id for r in merged.refs))
                else:
                    pending[found.key] = found
            threads, _ = await self._deliver(list(pending.values()), now)
            if threads:
                cursors = await self._store.cursors(name)
                for (source, scan), (channel, ts) in threads.items():
                    cursor = cursors.get((source, scan)) or _first_cursor(name, pending[(source, scan)])
                    await self._store.save_cursor(replace(cursor, thread_channel=channel, thread_ts=ts))

    async def _confirm(
        self, name: str, reader: ScanReader, alert: AlertRun, watches: list[Watch], now: datetime
    ) -> _Candidate | None:
        """The reported run as Purview has it (status, real error), claimed; None if not news."""
        try:
            source = await reader.data_source(alert.source)
            source_name = str(source.get("name") or alert.source)
            runs = await reader.latest_runs(source_name, alert.scan)
        except GatewayError as error:
            log.warning(
                "alert for %s/%s: cannot read it from Purview: %s", alert.source, alert.scan, error.reason
            )
            return None
        run = _pick(runs, alert.run_id, self._config.statuses)
        if run is None or not self._is_news(run, now):
            status = run.get("status") if run else "not found"
            log.info("alert for %s/%s run %s: %s, not posted", alert.source, alert.scan, alert.run_id, status)
            return None
        collection = collection_of(source)
        channel = self._router.channel(Place(name, collection, source_name), watches)
        if channel is None:
            log.info("alert for %s/%s: no channel routed; not posted", source_name, alert.scan)
            return None
        candidate = await self._claim(name, source_name, collection, alert.scan, [run], channel)
        if candidate is not None:
            candidate.seen = runs
        return candidate

    # --- leases ----------------------------------------------------------------------------------------

    async def sweep_if_leased(self, account: str) -> SweepResult | None:
        """One sweep under the account's lease (`purview-bot watch --once`), renewed every TTL / 2 while
        it runs; None when another replica holds it. Raises what `sweep` raises, and `LeaseLostError`
        (the sweep cancelled) when the lease cannot be renewed."""
        lease = lease_name(account)
        ttl = self._lease_ttl()
        if not await self._store.acquire_lease(lease, holder=self._config.holder, ttl_seconds=ttl):
            log.info("sweep of %s: another replica holds the lease", account_name(account))
            return None
        try:
            return await self._renewing(lease, self.sweep(account), ttl / 2)
        except LeaseLostError:
            log.warning("sweep of %s: lost lease %s; sweep abandoned", account_name(account), lease)
            raise
        finally:
            await self._store.release_lease(lease, holder=self._config.holder)

    def _lease_ttl(self) -> float:
        """interval / 2; a one-off sweep (interval 0) holds it for two diagnosis deadlines."""
        if self._config.interval_seconds > 0:
            return self._config.interval_seconds / 2
        return self._config.stale_after.total_seconds()

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: per account, hold the lease (renewed every interval/4) and sweep every
        interval; a standby retries every interval/4. A failed sweep is logged and counted, never fatal."""
        await asyncio.gather(*(self._account_loop(account, stop) for account in self._config.accounts))

    async def _account_loop(self, account: str, stop: asyncio.Event) -> None:
        lease = lease_name(account)
        tick = self._config.interval_seconds / 4
        last_sweep = float("-inf")
        held = False
        try:
            while not stop.is_set():
                was_held, held = held, await self._acquire(lease)
                if held and not was_held:
                    log.info("lease %s taken by %s", lease, self._config.holder)
                if held and time.monotonic() - last_sweep >= self._config.interval_seconds:
                    last_sweep = time.monotonic()
                    held = await self._sweep_holding(account, lease, tick)
                await _wait(stop, tick)
        finally:
            if held:
                try:
                    await self._store.release_lease(lease, holder=self._config.holder)
                except Exception:
                    log.exception("releasing lease %s failed", lease)

    async def _acquire(self, lease: str) -> bool:
        try:
            return await self._store.acquire_lease(
                lease, holder=self._config.holder, ttl_seconds=self._lease_ttl()
            )
        except Exception:
            log.exception("lease %s: the store did not answer", lease)
            return False

    async def _renewing(self, lease: str, work: Awaitable[T], tick: float) -> T:
        """Run `work` while renewing `lease` every `tick` seconds; its result, or what it raises.

        A renewal that fails (another holder, or the store not answering) cancels the work and raises
        `LeaseLostError`. Cancelling the caller cancels the work too.
        """
        task = asyncio.ensure_future(work)
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=tick)
                if not task.done() and not await self._acquire(lease):
                    task.cancel()
                    await asyncio.wait({task})
                    raise LeaseLostError(lease)
        finally:
            if not task.done():  # we were cancelled ourselves (shutdown)
                task.cancel()
        return task.result()

    async def _sweep_holding(self, account: str, lease: str, tick: float) -> bool:
        """Sweep while renewing the lease; a lost lease cancels the sweep. Returns whether it is held."""
        name = account_name(account)
        try:
            await self._renewing(lease, self.sweep(account), tick)
        except LeaseLostError:
            log.warning("sweep of %s: lost lease %s; sweep abandoned", name, lease)
            self._metrics.sweep_done(name, False)
            return False
        except Exception as error:
            log.error("sweep of %s failed", name, exc_info=error)
            self._metrics.sweep_done(name, False)
            return True
        self._metrics.sweep_done(name, True)
        return True


def _first_cursor(name: str, candidate: _Candidate) -> ScanCursor:
    """A scan the sweep has not seen yet, first met through the webhook: its cursor starts at the newest
    run read, so the next sweep does not post the scan's older failures as news."""
    source, scan = candidate.key
    finished = finished_runs(candidate.seen)
    if not finished:
        return ScanCursor(name, source, scan)
    newest = finished[0]
    return ScanCursor(
        name,
        source,
        scan,
        last_run_id=str(newest["id"]),
        last_status=str(newest.get("status") or ""),
        last_end_time=parse_time(newest.get("endTime")),
        failing_since=None if run_status(newest) == SUCCEEDED else parse_time(newest.get("endTime")),
    )


def lease_name(account: str) -> str:
    return f"sweep:{account_name(account)}"


def _run_in(state: ScanState | None, run_id: str) -> Json | None:
    if state is None:
        return None
    return next((r for r in state.runs if str(r.get("id", "")).lower() == run_id.lower()), None)


def _pick(runs: list[Json], run_id: str | None, statuses: frozenset[str]) -> Json | None:
    """The alert's run by id; without an id, the newest finished run in a watched status."""
    if run_id:
        return next((r for r in runs if str(r.get("id", "")).lower() == run_id.lower()), None)
    return next((r for r in finished_runs(runs) if run_status(r) in statuses), None)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass
