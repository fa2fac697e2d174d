"""Which replica sweeps an account: a lease in the store per account, held while sweeping and renewed
while a sweep runs; a sweep whose lease is lost is cancelled (another replica has taken over)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from checks.accounts import AccountRef
from handlers.ports import Store, StoreUnavailable
from handlers.watch.config import WatchConfig, WatchMetrics
from handlers.watch.sweep import SweepResult

log = logging.getLogger(__name__)

T = TypeVar("T")


class LeaseLostError(Exception):
    """The lease could not be renewed while work ran under it (another replica has it, or the store did
    not answer in time): the work was cancelled."""

    def __init__(self, lease: str) -> None:
        super().__init__(f"lost lease {lease}")
        self.lease = lease


def lease_name(account: str) -> str:
    return f"sweep:{AccountRef(account).name}"


class Leases:
    """Sweeps (`sweep(account)`) under the account's lease: once, or every interval until stopped."""

    def __init__(
        self,
        *,
        config: WatchConfig,
        store: Store,
        sweep: Callable[[str], Awaitable[SweepResult]],
        metrics: WatchMetrics,
    ) -> None:
        self._config = config
        self._store = store
        self._sweep = sweep
        self._metrics = metrics
        self._store_away = False  # said once while the database is away, not every tick

    async def sweep_if_leased(self, account: str) -> SweepResult | None:
        """One sweep under the account's lease (`purview-bot watch --once`), renewed every TTL / 2 while
        it runs; None when another replica holds it. Raises what the sweep raises, and `LeaseLostError`
        (the sweep cancelled) when the lease cannot be renewed."""
        name = AccountRef(account).name
        lease = lease_name(account)
        ttl = self._lease_ttl()
        if not await self._store.acquire_lease(lease, holder=self._config.holder, ttl_seconds=ttl):
            log.info("sweep of %s: another replica holds the lease", name)
            return None
        try:
            return await self._renewing(lease, self._sweep(account), ttl / 2)
        except LeaseLostError:
            log.warning("sweep of %s: lost lease %s; sweep abandoned", name, lease)
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
            held = await self._store.acquire_lease(
                lease, holder=self._config.holder, ttl_seconds=self._lease_ttl()
            )
        except StoreUnavailable as error:
            if not self._store_away:
                log.warning("lease %s: %s; the watcher waits for it", lease, error)
                self._store_away = True
            return False
        except Exception:
            log.exception("lease %s: the store did not answer", lease)
            return False
        if self._store_away:
            log.warning("lease %s: the database answers again; the watcher goes on", lease)
            self._store_away = False
        return held

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
        name = AccountRef(account).name
        try:
            await self._renewing(lease, self._sweep(account), tick)
        except LeaseLostError:
            log.warning("sweep of %s: lost lease %s; sweep abandoned", name, lease)
            self._metrics.sweep_done(name, False)
            return False
        except StoreUnavailable as error:
            log.warning("sweep of %s stopped: %s", name, error)
            self._metrics.sweep_done(name, False)
            return True
        except Exception as error:
            log.error("sweep of %s failed", name, exc_info=error)
            self._metrics.sweep_done(name, False)
            return True
        self._metrics.sweep_done(name, True)
        return True


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass
