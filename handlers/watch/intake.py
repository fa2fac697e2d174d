"""Runs an Azure Monitor alert named (handlers.watch.webhook): confirmed from Purview, then the sweep's
claim → diagnose → post pipeline, so a run reported by both the alert and a sweep is posted once."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from checks.accounts import AccountRef
from checks.errors import GatewayError
from checks.gateways.api import Json
from handlers.ports import ScanCursor, Watch
from handlers.watch.alerts import AlertRun
from handlers.watch.model import ScanKey, cursor_at, finished_runs, run_by_id, run_status
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
        name = AccountRef(account).name
        reader = self._purview(account)
        async with self._locks(name):
            now = self._clock()
            watches = await self._store.watches()
            pending: dict[ScanKey, Candidate] = {}
            for alert in alerts:
                found = await self._confirm(name, reader, alert, watches, now)
                if found is None:
                    continue
                if found.key in pending:
                    pending[found.key].add(found.refs)
                else:
                    pending[found.key] = found
            threads, _ = await self._pipeline.deliver(list(pending.values()), now)
            if threads:
                cursors = await self._store.cursors(name)
                for key, thread in threads.items():
                    cursor = cursors.get(key) or first_cursor(name, pending[key])
                    await self._store.save_cursor(
                        replace(cursor, thread_channel=thread.channel, thread_ts=thread.ts)
                    )

    async def _confirm(
        self, name: str, reader: ScanReader, alert: AlertRun, watches: list[Watch], now: datetime
    ) -> Candidate | None:
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
        run = pick_run(runs, alert.run_id, self._config.statuses)
        if run is None or not self._pipeline.is_news(run, now):
            status = run.get("status") if run else "not found"
            log.info("alert for %s/%s run %s: %s, not posted", alert.source, alert.scan, alert.run_id, status)
            return None
        collection = collection_of(source)
        channel = self._router.channel(Place(name, collection, source_name), watches)
        if channel is None:
            log.info("alert for %s/%s: no channel routed; not posted", source_name, alert.scan)
            return None
        candidate = await self._pipeline.claim(name, source_name, collection, alert.scan, [run], channel)
        if candidate is not None:
            candidate.seen = runs
        return candidate
