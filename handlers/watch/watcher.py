"""The scan-failure watcher: notice failed scan runs, diagnose them, post each root cause once.

Runs reach one pipeline (handlers.watch.pipeline: claim → diagnose → group → post) from two sides: a
periodic sweep of each account (handlers.watch.sweep) and the alert webhook (handlers.watch.intake).
Which replica sweeps an account is decided by a lease in the store (handlers.watch.lease); everything the
watcher remembers is in the store, so any replica can take over. See docs/watcher-contract.md.

`Watcher` only wires those parts together; every dependency is passed in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from handlers.diagnosis import DiagnosisRunner
from handlers.ports import DiagnosisService, Store
from handlers.watch.alerts import AlertRun
from handlers.watch.config import Clock, NoMetrics, WatchConfig, WatchMetrics, utc_now
from handlers.watch.intake import Intake
from handlers.watch.lease import Leases
from handlers.watch.model import Publisher
from handlers.watch.pipeline import AccountLocks, Pipeline, Sides
from handlers.watch.reads import ScanReader
from handlers.watch.routing import Router
from handlers.watch.sweep import Sweeper, SweepResult


class Watcher:
    def __init__(
        self,
        *,
        config: WatchConfig,
        store: Store,
        purview: Callable[[str], ScanReader],
        service: DiagnosisService,
        publisher: Publisher,
        router: Router,
        metrics: WatchMetrics | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.config = config
        counted: WatchMetrics = metrics or NoMetrics()
        runner = DiagnosisRunner(service, counted, deadline_seconds=config.deadline_seconds)
        pipeline = Pipeline(
            config=config, store=store, runner=runner, publisher=publisher, metrics=counted, router=router
        )
        sides = Sides(config, store, purview, pipeline, router, AccountLocks(), clock)
        self._sweeper = Sweeper(sides, publisher=publisher, metrics=counted)
        self._intake = Intake(sides)
        self._leases = Leases(config=config, store=store, sweep=self.sweep, metrics=counted)

    async def sweep(self, account: str) -> SweepResult:
        """One sweep of one account (the caller holds its lease)."""
        return await self._sweeper.sweep(account)

    async def runs_reported(self, runs: Sequence[AlertRun]) -> None:
        """Runs an alert named: confirmed from Purview, then the sweep's claim → diagnose → post path."""
        await self._intake.runs_reported(runs)

    async def sweep_if_leased(self, account: str) -> SweepResult | None:
        """One sweep under the account's lease; None when another replica holds it."""
        return await self._leases.sweep_if_leased(account)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Sweep every account under its lease every interval until `stop` is set."""
        await self._leases.run_forever(stop)
