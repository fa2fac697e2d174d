"""Replicas on PostgreSQL: two watchers, one lease per account; each failure posted once; fast takeover.

Two `python -m bot watch` processes (interval 2 s) share the sandbox world, the fake Slack and one
database. Only the lease holder sweeps, and the failures present at start are each posted once. Then the
holder is SIGKILLed (no lease release) and new failures appear in the world (newer Failed runs of scans
that succeeded until now): the survivor must take the lease within one interval (contract: TTL interval/2,
retries every interval/4), measured from the kill to its first post, and post the new failures, each
once. Each replica has its own bot token, so the fake Slack can tell who posted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox import Sandbox, load_world
from sandbox.generate import failing_runs, generated_world
from tests.process.harness import (
    SlowSlack,
    WatchProcess,
    describe,
    parents,
    post_counts,
    publish_run,
    runs_in,
    watch_env,
    withhold_newest_runs,
)
from tests.slack.fake_slack import Call

pytestmark = pytest.mark.postgres

INTERVAL = 2.0
INITIAL = 4
LATE = 3
SCANS = 16


def _poster(call: Call) -> str:
    return call.authorization.removeprefix("Bearer ")


async def _wait_until(
    predicate: Callable[[], bool],
    timeout: float,  # noqa: ASYNC109 - a helper owning its deadline
    what: str,
    logs: Callable[[], str],
) -> float:
    """Poll `predicate()` every 50 ms; the time.monotonic() when it held, or fail naming `what`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return time.monotonic()
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout:g} s\n{logs()}")


async def test_replicas_post_once_and_the_survivor_takes_over(postgres_url: str, tmp_path: Path) -> None:
    world = generated_world(SCANS, 1, INITIAL + LATE, seed=23)
    failing = failing_runs(world)  # run id → SOURCE/SCAN
    late_keys = sorted(failing.values())[:LATE]
    held = withhold_newest_runs(world, late_keys)
    late = {str(run["id"]) for run in held.values()}
    initial = set(failing) - late
    assert len(initial) == INITIAL and len(late) == LATE

    async with Sandbox(load_world(world)) as sb, SlowSlack() as slack:
        procs = {
            name: await WatchProcess.start(
                name,
                watch_env(sb, slack, postgres_url, interval=INTERVAL, deadline=5, token=f"xoxb-{name}"),
                tmp_path,
                once=False,
            )
            for name in ("replica-a", "replica-b")
        }

        def logs() -> str:
            return "\n".join(p.log(20) for p in procs.values())

        try:
            await _wait_until(
                lambda: set(post_counts(slack, initial)) == initial, 30, "initial failures posted", logs
            )
            await asyncio.sleep(INTERVAL * 1.5)  # another sweep each way: nothing more may be posted
            counts = post_counts(slack, initial)
            assert set(counts.values()) == {1}, describe(counts, initial) + "\n" + logs()

            sweepers = [name for name, p in procs.items() if p.sweeps()]
            assert len(sweepers) == 1, f"only the lease holder sweeps; these swept: {sweepers}\n{logs()}"
            holder, survivor = sweepers[0], next(n for n in procs if n not in sweepers)

            await procs[holder].kill()
            killed_at = procs[holder].killed_at
            assert killed_at is not None
            for key, run in held.items():
                publish_run(sb, key, run)

            survivor_token = f"xoxb-{survivor}"
            first_post = await _wait_until(
                lambda: any(_poster(c) == survivor_token and c.at > killed_at for c in parents(slack)),
                INTERVAL * 4,
                f"{survivor} posts after {holder} was killed",
                logs,
            )
            swept = await _wait_until(
                lambda: bool(procs[survivor].sweeps(after=killed_at)),
                20,
                f"{survivor} finishes a sweep after {holder} was killed",
                logs,
            )
            await _wait_until(lambda: set(post_counts(slack, late)) == late, 20, "late failures posted", logs)
            await slack.settle(quiet=INTERVAL)
            takeover = first_post - killed_at
            print(
                f"\ntakeover (interval {INTERVAL:g} s): {survivor}'s first post {takeover:.2f} s after "
                f"the kill, its sweep logged {swept - killed_at:.2f} s after it (Slack's pacing included)"
            )
            assert takeover <= INTERVAL * 1.25, (
                f"{survivor} first posted {takeover:.2f} s after the kill: more than one interval\n{logs()}"
            )
            everything = initial | late
            counts = post_counts(slack, everything)
            assert set(counts) == everything and set(counts.values()) == {1}, describe(counts, everything)
            late_posters = {_poster(c) for c in parents(slack) if runs_in(c, late)}
            assert late_posters == {survivor_token}
        finally:
            for proc in procs.values():
                await proc.stop()
