"""Repeats of a scan whose channels share one thread, and the restart dedupe of a repeat (also in a thread
older than the history a restart searches)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

import handlers.watch.sweep as sweep_module
from bot.metrics import Metrics
from bot.slack_client import web_client
from bot.store import RunRef, Watch
from handlers.slack.watch_publisher import ChannelPacer, WatchPublisher
from handlers.watch.model import Failure
from tests.watch.conftest import ACCOUNT, CHANNEL, NOW, TOKEN, RigFactory, shown

GONE = "C0ARCHIVED"


async def test_a_repeat_in_a_thread_two_channels_share_is_posted_once(rig: RigFactory) -> None:
    """A watching channel that refuses the bot fell back to the on-call thread: the repeat is ONE reply
    there, ONE parent edit, and both channels' posts of the run record that thread."""
    async with rig() as r:
        r.slack.refuse[GONE] = "channel_not_found"
        await r.store.add_watch(Watch(GONE, ACCOUNT, source="sales-adls"))
        watcher = r.watcher()
        await watcher.sweep(ACCOUNT)
        r.add_run("sales-adls", "weekly", status="Failed", ended=NOW - timedelta(minutes=2))
        await watcher.sweep(ACCOUNT)
        [parent] = r.parents()
        ts = str(parent.response["ts"])
        before = len(r.thread(parent))
        edits_before = len([c for c in r.slack.calls_to("chat.update") if c.args.get("ts") == ts])

        r.clock[0] = NOW + timedelta(minutes=32)
        again = r.add_run("sales-adls", "weekly", status="Failed", ended=NOW + timedelta(minutes=30))
        result = await watcher.sweep(ACCOUNT)

        new = [shown(c.text) for c in r.thread(parent)[before:]]
        assert len(new) == 1 and "failed again" in new[0], new
        assert result.posts == 1 and len(r.parents()) == 1
        edits = [c for c in r.slack.calls_to("chat.update") if c.args.get("ts") == ts]
        assert len(edits) - edits_before == 1
        ref = RunRef(ACCOUNT, "sales-adls", "weekly", str(again["id"]))
        posts = {p.channel: (p.posted_in, p.message_ts) for p in await r.store.run_posts([ref])}
        assert posts == {CHANNEL: (CHANNEL, ts), GONE: (CHANNEL, ts)}
        record = await r.store.run_record(ref)
        assert record is not None and record.state == "posted"


@pytest.mark.parametrize("old_parent", [False, True], ids=["recent-parent", "old-parent"])
async def test_a_repeat_posted_by_a_process_that_then_died_is_not_posted_again(
    rig: RigFactory, monkeypatch: pytest.MonkeyPatch, old_parent: bool
) -> None:
    """The restart dedupe of a repeat: the parent's metadata names the repeat's run once edited, so the
    process that takes the stale claim over finds it there and records it, posting nothing. An open
    thread's parent older than the history a restart searches (claimed_at − margin) is read directly."""
    if old_parent:  # a margin below zero: the parent lies before the searched window (a thread open > 1 min)
        monkeypatch.setattr(sweep_module, "HISTORY_MARGIN", timedelta(seconds=-0.05))
    async with rig() as r:
        watcher = r.watcher(deadline=0.1)
        await watcher.sweep(ACCOUNT)
        r.add_run("sales-adls", "weekly", status="Failed", ended=NOW - timedelta(minutes=2))
        await watcher.sweep(ACCOUNT)
        [parent] = r.parents()
        ts = str(parent.response["ts"])
        if old_parent:
            await asyncio.sleep(0.1)  # the parent is now older than the claim below minus the margin

        again = r.add_run("sales-adls", "weekly", status="Failed", ended=NOW + timedelta(minutes=20))
        ref = RunRef(ACCOUNT, "sales-adls", "weekly", str(again["id"]))
        assert await r.store.claim_run(ref, status="Failed", end_time=None, holder="dead")
        # the dead process posted the repeat (reply and parent edit), then died before recording it
        failure = Failure(ACCOUNT, "sales-adls", "sales", "weekly", again, (str(again["id"]),))
        client = web_client(token=TOKEN, base_url=r.slack.url, counter=Metrics())
        await WatchPublisher(client, ChannelPacer(interval=0.0)).post_repeat(
            CHANNEL, ts, [failure], None, NOW
        )
        replies = len(r.thread(parent))
        await asyncio.sleep(0.25)  # the claim goes stale (2 × the 0.1 s deadline)

        r.clock[0] = NOW + timedelta(minutes=30)
        result = await watcher.sweep(ACCOUNT)
        assert result.posts == 0 and len(r.thread(parent)) == replies and len(r.parents()) == 1
        record = await r.store.run_record(ref)
        assert record is not None and record.state == "posted" and record.message_ts == ts
