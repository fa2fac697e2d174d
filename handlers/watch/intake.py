"""Runs an Azure Monitor alert named (handlers.watch.webhook): confirmed from Purview, then the sweep's
claim → diagnose → post pipeline, so a run reported by both the alert and a sweep is posted once.

The reads are bounded like a sweep's: each data source and each scan named is read once, at most
`PURVIEW_BOT_WATCH_CONCURRENCY` requests in flight, and outside the account's lock (the claims decide who
posts, so a read needs no lock); the claims, posts and cursors are made under it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from checks.accounts import AccountRef
from checks.errors import GatewayError
from checks.gateways.api import Json
from handlers.ports import ScanCursor, Watch
from handlers.watch.alerts import AlertRun
from handlers.watch.model import ScanKey, cursor_at, finished_runs, open_threads, run_by_id, run_status
from handlers.watch.pipeline import Candidate, Side
from handlers.watch.reads import ScanReader, collection_of
from handlers.watch.routing import Place

log = logging.getLogger(__name__)


def pick_run(runs: list[Json], run_id: str | None, statuses: frozenset[str]) -> Json | None:
    """The alert's run by id; without an id, the newest finished run in a watched status."""
    if run_id:
        return run_by_id(runs, run_id)
    return next((r for r in finished_runs(runs) if run_status(r) in statuses), None)


def first_cursor(name: str, candidate: Candidate) -> ScanCursor:
    """A scan the sweep has not seen yet, first met through the webhook: its cursor starts at the newest
    run read, so the next sweep does not post the scan's older failures as news."""
    blank = ScanCursor(name, *candidate.key)
    finished = finished_runs(candidate.seen)
    return cursor_at(blank, finished[0]) if finished else blank


class Intake(Side):
    async def runs_reported(self, runs: Sequence[AlertRun]) -> None:
        """Runs an alert named, by account (an alert without one is for the first configured account)."""
        by_account: dict[str, list[AlertRun]] = {}
        for run in runs:
            account = AccountRef.resolve(run.account or None, self._config.accounts)
            if account is None:
                log.warning("alert for account %s, which is not configured: ignored", run.account)
                continue
            by_account.setdefault(account.configured, []).append(run)
        for account_id, alerts in by_account.items():
            await self._intake(account_id, alerts)

    async def _intake(self, account: str, alerts: list[AlertRun]) -> None:
        """Read what the alerts name from Purview (each source and each scan once, at most
        `concurrency` requests in flight, outside the account's lock), then claim, diagnose and post
        under it."""
        name = AccountRef(account).name
        read = await _read_alerts(self._purview(account), alerts, self._config.concurrency)
        async with self._locks(name):
            now = self._clock()
            watches = await self._store.watches()
            pending: dict[ScanKey, Candidate] = {}
            for alert in alerts:
                found = await self._confirm(name, read, alert, watches, now)
                if found is None:
                    continue
                if found.key in pending:
                    pending[found.key].add(found.refs)
                else:
                    pending[found.key] = found
            cursors = await self._store.cursors(name) if pending else {}
            threads, _ = await self._pipeline.deliver(list(pending.values()), now, open_threads(cursors))
            if threads:
                for key, thread in threads.items():
                    cursor = cursors.get(key) or first_cursor(name, pending[key])
                    await self._store.save_cursor(
                        replace(cursor, thread_channel=thread.channel, thread_ts=thread.ts)
                    )

    async def _confirm(
        self, name: str, read: _AlertReads, alert: AlertRun, watches: list[Watch], now: datetime
    ) -> Candidate | None:
        """The reported run as Purview has it (status, real error), claimed; None if not news."""
        source = read.sources.get(alert.source.lower())
        runs = read.runs.get((alert.source.lower(), alert.scan.lower()))
        if source is None or runs is None:
            return None  # not readable (logged when read)
        source_name = str(source.get("name") or alert.source)
        run = pick_run(runs, alert.run_id, self._config.statuses)
        if run is None or not self._pipeline.is_news(run, now):
            status = run.get("status") if run else "not found"
            log.info("alert for %s/%s run %s: %s, not posted", alert.source, alert.scan, alert.run_id, status)
            return None
        collection = collection_of(source)
        channels = self._router.channels(Place(name, collection, source_name), watches)
        if not channels:
            log.info("alert for %s/%s: no channel routed; not posted", source_name, alert.scan)
            return None
        candidate = await self._pipeline.claim(name, source_name, collection, alert.scan, [run], channels)
        if candidate is not None:
            candidate.seen = runs
        return candidate


@dataclass
class _AlertReads:
    """What the alerts of one account name, read once each: data sources by lower-cased name, and the
    latest runs by (source, scan) lower-cased. Unreadable ones are absent (and logged)."""

    sources: dict[str, Json] = field(default_factory=dict)
    runs: dict[tuple[str, str], list[Json]] = field(default_factory=dict)


async def _read_alerts(reader: ScanReader, alerts: Sequence[AlertRun], concurrency: int) -> _AlertReads:
    """Each data source the alerts name, then each of their scans' latest runs, concurrently with at
    most `concurrency` requests in flight: a payload naming hundreds of runs costs one read per source
    and per scan, not two per run one after the other."""
    slots = asyncio.Semaphore(concurrency)
    read = _AlertReads()

    async def source(key: str, given: str) -> None:
        try:
            async with slots:
                read.sources[key] = await reader.data_source(given)
        except GatewayError as error:
            log.warning("alert for %s: cannot read it from Purview: %s", given, error.reason)

    async def runs(key: tuple[str, str], given: AlertRun) -> None:
        found = read.sources.get(key[0])
        if found is None:
            return
        try:
            async with slots:
                read.runs[key] = await reader.latest_runs(str(found.get("name") or given.source), given.scan)
        except GatewayError as error:
            log.warning(
                "alert for %s/%s: cannot read it from Purview: %s", given.source, given.scan, error.reason
            )

    sources = {a.source.lower(): a.source for a in alerts}
    await asyncio.gather(*(source(key, given) for key, given in sources.items()))
    scans = {(a.source.lower(), a.scan.lower()): a for a in alerts}
    await asyncio.gather(*(runs(key, given) for key, given in scans.items()))
    return read
