"""Sweeps end to end: sandbox → watcher → fake Slack, with the real SQLite store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

from bot.store import RunRef
from handlers.render.watch_posts import FAILURE_EVENT
from handlers.watch.alerts import AlertRun
from tests.slack.conftest import plain
from tests.slack.fake_slack import BOT_USER_ID
from tests.watch.conftest import (
    ACCOUNT,
    CHANNEL,
    NOW,
    RecordingMetrics,
    Rig,
    RigFactory,
    shown,
    storm_world,
)


async def test_a_failure_between_two_sweeps_is_posted_once_with_its_diagnosis(rig: RigFactory) -> None:
    async with rig() as r:
        watcher = r.watcher()
        first = await watcher.sweep(ACCOUNT)  # the sample's failures are older than the 1 h lookback
        assert (first.new_failures, first.posts) == (0, 0)
        assert first.scans == r.scan_count
        assert r.parents() == []

        run = r.add_run("sales-adls", "weekly", status="Failed", ended=NOW - timedelta(minutes=2))
        second = await watcher.sweep(ACCOUNT)
        assert (second.new_failures, second.posts) == (1, 1)
        [parent] = r.parents()
        assert parent.args["channel"] == CHANNEL
        head = shown(parent.text)
        assert "FAIL · Scan weekly of sales-adls failed 2026-11-28 07:58 UTC" in head
        assert "Purview lacks data access (AuthorizationPermissionMismatch)" in head
        metadata = parent.args["metadata"]
        assert metadata["event_type"] == FAILURE_EVENT
        assert {k: metadata["event_payload"][k] for k in ("account", "runs")} == {
            "account": ACCOUNT,
            "runs": [run["id"]],
        }
        assert "for" not in metadata["event_payload"]  # a channel's own parent stands in for no other
        thread = r.thread(parent)
        assert "source-access" in "\n".join(c.text for c in thread) or "cannot read blobs" in plain(
            "\n".join(c.text for c in thread)
        )
        assert thread[-1].has_rerun_button
        record = await r.store.run_record(RunRef(ACCOUNT, "sales-adls", "weekly", run["id"]))
        assert record is not None and record.state == "posted"
        assert record.message_ts == parent.response["ts"] and record.channel == CHANNEL

        third = await watcher.sweep(ACCOUNT)
        assert (third.new_failures, third.posts) == (0, 0)
        assert len(r.parents()) == 1


async def test_recovery_is_reported_once_in_the_failure_thread(rig: RigFactory) -> None:
    async with rig() as r:
        watcher = r.watcher()
        await watcher.sweep(ACCOUNT)
        r.add_run("sales-adls", "weekly", status="Failed", ended=NOW - timedelta(minutes=2))
        await watcher.sweep(ACCOUNT)
        [parent] = r.parents()
        replies = len(r.thread(parent))

        r.clock[0] = NOW + timedelta(hours=1)
        r.add_run("sales-adls", "weekly", status="Succeeded", ended=NOW + timedelta(minutes=40))
        result = await watcher.sweep(ACCOUNT)
        assert (result.recoveries, result.posts) == (1, 0)
        thread = r.thread(parent)
        assert len(thread) == replies + 1
        assert "Scan weekly of sales-adls recovered 2026-11-28 08:40 UTC" in shown(thread[-1].text)
        cursor = (await r.store.cursors(ACCOUNT))[("sales-adls", "weekly")]
        assert cursor.thread_ts is None and cursor.last_status == "Succeeded"

        again = await watcher.sweep(ACCOUNT)
        assert again.recoveries == 0
        assert len(r.thread(parent)) == replies + 1


async def test_twenty_failures_with_one_cause_make_one_post(rig: RigFactory) -> None:
    world, names = storm_world(20, NOW - timedelta(minutes=10))
    async with rig(world) as r:
        result = await r.watcher().sweep(ACCOUNT)
        assert (result.new_failures, result.posts) == (20, 1)
        [parent] = r.parents()
        head = shown(parent.text)
        assert head.startswith("🔴 FAIL · 20 scans failed:")
        assert "has Get but not List on secrets in Key Vault kv-finance" in head
        assert len(parent.args["metadata"]["event_payload"]["runs"]) == 20
        thread = r.thread(parent)
        listed = plain(thread[0].text)
        assert "Affected scans (20)" in listed
        assert all(f"Scan nightly of {name}" in listed for name in names)
        assert thread[-1].has_rerun_button  # the report of one of them
        records = [await r.store.run_record(RunRef(ACCOUNT, n, "nightly", "")) for n in names[:1]]
        assert records == [None]  # (run ids are random: look them up through the runs)
        for name in names:
            run_id = r.runs(name, "nightly")[0]["id"]
            record = await r.store.run_record(RunRef(ACCOUNT, name, "nightly", run_id))
            assert record is not None and record.message_ts == parent.response["ts"]
            assert record.fingerprint and record.fingerprint.startswith("key-vault-access:")


async def test_the_webhook_and_the_sweep_post_a_run_once(rig: RigFactory) -> None:
    async with rig() as r:
        sweeper, hook = r.watcher(holder="replica-a"), r.watcher(holder="replica-b")
        await sweeper.sweep(ACCOUNT)
        run = r.add_run("sales-adls", "weekly", status="Failed", ended=NOW - timedelta(minutes=1))
        alert = AlertRun(
            account=None, source="sales-adls", scan="weekly", run_id=run["id"], status=None, error=None
        )
        await asyncio.gather(sweeper.sweep(ACCOUNT), hook.runs_reported([alert]))
        await hook.runs_reported([alert])  # Azure Monitor retries
        parents = [p for p in r.parents() if run["id"] in p.args["metadata"]["event_payload"]["runs"]]
        assert len(parents) == 1
        assert "Scan weekly of sales-adls failed" in plain(parents[0].text)


async def test_the_webhook_posts_a_reported_failure_and_ignores_a_success(rig: RigFactory) -> None:
    async with rig() as r:
        watcher = r.watcher()
        ok = r.add_run("healthy-blob", "daily", status="Succeeded", ended=NOW - timedelta(minutes=3))
        failed = r.add_run("sales-adls", "weekly", status="Failed", ended=NOW - timedelta(minutes=1))
        await watcher.runs_reported(
            [
                AlertRun(ACCOUNT, "healthy-blob", "daily", ok["id"], "Failed", None),  # the alert is wrong
                AlertRun(ACCOUNT, "SALES-ADLS", "weekly", None, None, None),  # no run id: the newest failed
                AlertRun("other-account", "sales-adls", "weekly", failed["id"], None, None),
            ]
        )
        [parent] = r.parents()
        assert parent.args["metadata"]["event_payload"]["runs"] == [failed["id"]]
        cursor = (await r.store.cursors(ACCOUNT))[("sales-adls", "weekly")]
        assert cursor.thread_ts == parent.response["ts"] and cursor.last_run_id == failed["id"]
        # the sweep meets the scan after the webhook: its older failure (within 24 h) is not news
        await r.watcher(lookback=timedelta(hours=24)).sweep(ACCOUNT)
        later = r.parents()[1:]
        assert later and not any("sales-adls" in plain(p.text) for p in later)


def _posted_by_a_dead_process(r: Rig, run_ids: list[str], *, replies: int) -> str:
    """A parent the dead process posted for `run_ids` (and `replies` of its thread) before it died, without
    recording it; its ts."""
    ts = f"{time.time():.6f}"
    metadata = {"event_type": FAILURE_EVENT, "event_payload": {"account": ACCOUNT, "runs": run_ids}}
    r.slack.add_message(
        CHANNEL, ts, "🔴 Scan weekly of sales-adls failed", user=BOT_USER_ID, metadata=metadata
    )
    for i in range(replies):
        r.slack.add_message(
            CHANNEL, f"{float(ts) + (i + 1) / 1000:.6f}", "report", user=BOT_USER_ID, thread_ts=ts
        )
    return ts


async def test_a_claim_left_by_a_dead_process_is_found_in_the_channel_not_posted_again(
    rig: RigFactory,
) -> None:
    async with rig() as r:
        run = r.add_run("sales-adls", "weekly", status="Failed", ended=NOW - timedelta(minutes=1))
        ref = RunRef(ACCOUNT, "sales-adls", "weekly", run["id"])
        assert await r.store.claim_run(ref, status="Failed", end_time=None, holder="dead")
        # the dead process posted the parent and its report, then died before mark_posted
        ts = _posted_by_a_dead_process(r, [run["id"]], replies=1)
        await asyncio.sleep(0.25)
        result = await r.watcher(deadline=0.1).sweep(ACCOUNT)
        assert result.posts == 0
        assert r.slack.calls_to("chat.postMessage") == []  # neither a parent nor a reply
        history = r.slack.calls_to("conversations.history")
        assert history and history[0].args["include_all_metadata"] in ("1", "true", True)
        record = await r.store.run_record(ref)
        assert record is not None and record.state == "posted" and record.message_ts == ts
        cursor = (await r.store.cursors(ACCOUNT))[("sales-adls", "weekly")]
        assert cursor.thread_ts == ts  # its recovery goes to that thread


async def test_a_parent_found_with_an_empty_thread_gets_its_report_in_that_thread(rig: RigFactory) -> None:
    async with rig() as r:
        run = r.add_run("sales-adls", "weekly", status="Failed", ended=NOW - timedelta(minutes=1))
        ref = RunRef(ACCOUNT, "sales-adls", "weekly", run["id"])
        assert await r.store.claim_run(ref, status="Failed", end_time=None, holder="dead")
        # the dead process posted the parent, then died before its thread and mark_posted
        ts = _posted_by_a_dead_process(r, [run["id"]], replies=0)
        await asyncio.sleep(0.25)
        watcher = r.watcher(deadline=0.1)
        result = await watcher.sweep(ACCOUNT)
        assert result.posts == 0 and r.parents() == []  # no second parent
        thread = r.slack.thread(CHANNEL, ts)
        assert thread, "the report was not posted in the found parent's thread"
        text = plain("\n".join(c.text for c in thread))
        assert "source-access" in text or "cannot read blobs" in text
        assert thread[-1].has_rerun_button
        record = await r.store.run_record(ref)
        assert record is not None and record.state == "posted" and record.message_ts == ts
        assert record.channel == CHANNEL
        cursor = (await r.store.cursors(ACCOUNT))[("sales-adls", "weekly")]
        assert cursor.thread_ts == ts

        replies = len(thread)
        again = await watcher.sweep(ACCOUNT)  # recorded now: nothing more
        assert again.posts == 0 and len(r.slack.thread(CHANNEL, ts)) == replies and r.parents() == []


async def test_a_storm_parent_found_with_an_empty_thread_gets_the_storm_thread(rig: RigFactory) -> None:
    world, names = storm_world(3, NOW - timedelta(minutes=10))
    async with rig(world) as r:
        refs = [RunRef(ACCOUNT, n, "nightly", r.runs(n, "nightly")[0]["id"]) for n in names]
        for ref in refs:
            assert await r.store.claim_run(ref, status="Failed", end_time=None, holder="dead")
        ts = _posted_by_a_dead_process(r, [ref.run_id for ref in refs], replies=0)
        await asyncio.sleep(0.25)
        result = await r.watcher(deadline=0.1).sweep(ACCOUNT)
        assert result.posts == 0 and r.parents() == []
        thread = r.slack.thread(CHANNEL, ts)
        listed = plain(thread[0].text)
        assert "Affected scans (3)" in listed
        assert all(f"Scan nightly of {name}" in listed for name in names)
        assert thread[-1].has_rerun_button
        for ref in refs:
            record = await r.store.run_record(ref)
            assert record is not None and record.state == "posted" and record.message_ts == ts
            assert record.fingerprint and record.fingerprint.startswith("key-vault-access:")


async def test_a_claim_left_unposted_is_posted_by_the_next_sweep(rig: RigFactory) -> None:
    async with rig() as r:
        run = r.add_run("sales-adls", "weekly", status="Failed", ended=NOW - timedelta(minutes=1))
        ref = RunRef(ACCOUNT, "sales-adls", "weekly", run["id"])
        await r.store.claim_run(ref, status="Failed", end_time=None, holder="dead")
        fresh = r.watcher(deadline=0.1)
        await asyncio.sleep(0.25)
        result = await fresh.sweep(ACCOUNT)
        assert result.posts == 1
        [parent] = r.parents()
        assert parent.args["metadata"]["event_payload"]["runs"] == [run["id"]]
        record = await r.store.run_record(ref)
        assert record is not None and record.state == "posted"


async def test_a_sweep_that_fails_is_counted_and_the_loop_goes_on(rig: RigFactory) -> None:
    async with rig() as r:
        r.sandbox.add_fault({"path": r"/scan/datasources\?", "status": 500, "times": 5})
        metrics = RecordingMetrics()
        watcher = r.watcher(interval=0.4, metrics=metrics)
        stop = asyncio.Event()
        loop = asyncio.ensure_future(watcher.run_forever(stop))
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.wait_for(loop, 10)
        assert (ACCOUNT, False) in metrics.sweeps
        assert (ACCOUNT, True) in metrics.sweeps  # once the faults ran out


async def _until(condition: Callable[[], bool], within: float = 20.0) -> None:
    """Wait for `condition` (polled), not a fixed time: a loaded machine only makes it slower."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the condition"
        await asyncio.sleep(0.02)


async def test_only_the_lease_holder_sweeps_and_a_standby_takes_over(rig: RigFactory) -> None:
    """The lease's ttl (interval / 2 = 1 s, renewed every 0.5 s) is long next to scheduling delays, and
    every step waits on what it needs (the holder's sweeps, the standby's), not on a fixed time."""
    async with rig() as r:
        a_metrics, b_metrics = RecordingMetrics(), RecordingMetrics()
        a = r.watcher(interval=2.0, metrics=a_metrics, holder="a")
        b = r.watcher(interval=2.0, metrics=b_metrics, holder="b")
        stop_a, stop_b = asyncio.Event(), asyncio.Event()
        loop_a = asyncio.ensure_future(a.run_forever(stop_a))
        await _until(lambda: len(a_metrics.sweeps) >= 1)  # a holds the lease
        loop_b = asyncio.ensure_future(b.run_forever(stop_b))
        await _until(lambda: len(a_metrics.sweeps) >= 3)  # two more intervals, b retrying all along
        assert b_metrics.sweeps == []
        stop_a.set()  # the holder stops (and releases): the standby takes over
        await asyncio.wait_for(loop_a, 10)
        swept_by_a = len(a_metrics.sweeps)
        await _until(lambda: len(b_metrics.sweeps) >= 1, within=10.0)
        stop_b.set()
        await asyncio.wait_for(loop_b, 10)
        assert b_metrics.sweeps and len(a_metrics.sweeps) == swept_by_a
