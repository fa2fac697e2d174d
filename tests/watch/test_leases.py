"""The account lease around a sweep: renewed while the sweep runs (also for `watch --once`), and a sweep
whose lease is taken is abandoned. The sweep is made slow by stalling Purview's data source listing."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from handlers.watch.lease import LeaseLostError, lease_name
from tests.watch.conftest import ACCOUNT, RecordingMetrics, Rig, RigFactory

INTERVAL = 1.0  # lease TTL 0.5 s; `run_forever` renews every 0.25 s, `sweep_if_leased` every TTL / 2
LEASE = lease_name(ACCOUNT)


def stall_listing(r: Rig, seconds: float) -> None:
    """The next listing of the account's data sources answers after `seconds`: the sweep waits."""
    r.sandbox.add_fault({"path": r"/scan/datasources\?", "delayMs": int(seconds * 1000), "times": 1})


async def steal_lease(r: Rig, holder: str, from_holder: str) -> None:
    """Another replica takes the lease (as if the holder's had expired)."""
    await r.store.release_lease(LEASE, holder=from_holder)
    assert await r.store.acquire_lease(LEASE, holder=holder, ttl_seconds=60)


async def test_a_once_sweep_longer_than_the_ttl_keeps_its_lease(rig: RigFactory) -> None:
    async with rig() as r:
        stall_listing(r, 1.5)  # three TTLs
        sweep = asyncio.ensure_future(r.watcher(interval=INTERVAL, holder="a").sweep_if_leased(ACCOUNT))
        taken_at: list[float] = []
        started = time.monotonic()
        # tried while the sweep is surely in its stall (almost three TTLs), not at its end, where the lease
        # is released a moment before the sweep's task is done
        while not sweep.done() and time.monotonic() - started < 1.4:
            await asyncio.sleep(0.05)
            if not sweep.done() and await r.store.acquire_lease(LEASE, holder="b", ttl_seconds=0.5):
                taken_at.append(time.monotonic() - started)  # two replicas sweep the account at once
                break
        result = await asyncio.wait_for(sweep, 10)
        assert not taken_at, f"another replica took the lease {taken_at[0]:.2f} s into the sweep"
        assert result is not None and result.scans == r.scan_count
        assert time.monotonic() - started >= 1.5  # the sweep did outlive its TTL
        # released at the end: free for the next replica
        assert await r.store.acquire_lease(LEASE, holder="b", ttl_seconds=0.5)


async def test_a_once_sweep_whose_lease_is_taken_is_abandoned(
    rig: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with rig() as r:
        stall_listing(r, 4.0)
        sweep = asyncio.ensure_future(r.watcher(interval=INTERVAL, holder="a").sweep_if_leased(ACCOUNT))
        await asyncio.sleep(0.2)
        await steal_lease(r, "b", from_holder="a")
        stolen_at = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="handlers.watch.lease"), pytest.raises(LeaseLostError):
            await asyncio.wait_for(sweep, 10)
        assert time.monotonic() - stolen_at < 1.0  # at the next renewal, not when the stall ends
        assert f"sweep of {ACCOUNT}: lost lease {LEASE}; sweep abandoned" in caplog.text
        assert r.parents() == []
        assert not await r.store.acquire_lease(LEASE, holder="c", ttl_seconds=1)  # b's is left alone


async def test_a_looping_sweep_whose_lease_is_taken_is_abandoned_and_counted(
    rig: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with rig() as r:
        stall_listing(r, 4.0)
        metrics = RecordingMetrics()
        watcher = r.watcher(interval=INTERVAL, holder="a", metrics=metrics)
        stop = asyncio.Event()
        with caplog.at_level(logging.INFO, logger="handlers.watch.lease"):
            loop = asyncio.ensure_future(watcher.run_forever(stop))
            await asyncio.sleep(0.3)
            await steal_lease(r, "b", from_holder="a")
            await asyncio.sleep(0.8)
            assert metrics.sweeps == [(ACCOUNT, False)]
            stop.set()
            await asyncio.wait_for(loop, 10)
        assert f"lease {LEASE} taken by a" in caplog.text
        assert f"sweep of {ACCOUNT}: lost lease {LEASE}; sweep abandoned" in caplog.text
        assert metrics.sweeps == [(ACCOUNT, False)]  # b holds it: a never swept again
        assert not await r.store.acquire_lease(LEASE, holder="c", ttl_seconds=1)
