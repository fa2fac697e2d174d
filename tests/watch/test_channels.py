"""Issue 9, item 2: configured routes win over watches, a watch adds a channel, and a channel that refuses
the post (archived, not found, the bot removed) gets it in the alert channel instead, saying why.

The bookkeeping stays exactly once per channel: the run is claimed once, each channel's post is recorded
(`run_posts`), and a claim taken over after a crash posts only where the failure is still missing.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from bot.store import RunRef, Watch
from handlers.render.watch_posts import FAILURE_EVENT
from handlers.watch.routing import Route
from tests.slack.conftest import plain
from tests.slack.fake_slack import BOT_USER_ID, Call
from tests.watch.conftest import ACCOUNT, CHANNEL, NOW, Rig, RigFactory, shown

ONCALL = "C0ONCALL"  # PURVIEW_BOT_ROUTES sends sales-adls here
RANDOM = "C0RANDOM"  # someone's channel watching sales-adls
GONE = "C0ARCHIVED"
ROUTES = [Route(ONCALL, source="sales-adls")]


def parents_in(r: Rig, channel: str) -> list[Call]:
    return [p for p in r.parents() if p.args["channel"] == channel]


def payload(call: Call) -> dict[str, object]:
    event_payload = call.args["metadata"]["event_payload"]
    assert isinstance(event_payload, dict)
    return event_payload


async def fail_sales_adls(r: Rig) -> str:
    run = r.add_run("sales-adls", "weekly", status="Failed", ended=NOW - timedelta(minutes=2))
    return str(run["id"])


async def test_a_watch_adds_its_channel_and_the_routed_channel_still_gets_the_failure(
    rig: RigFactory,
) -> None:
    """Before: a watch of the source (more specific than the route) took the failure from on-call."""
    async with rig() as r:
        await r.store.add_watch(Watch(RANDOM, ACCOUNT, source="sales-adls"))
        await r.store.add_watch(Watch("D0SOMEONE", ACCOUNT, source="sales-adls"))  # a DM holds none
        watcher = r.watcher(routes=ROUTES)
        await watcher.sweep(ACCOUNT)
        run_id = await fail_sales_adls(r)
        result = await watcher.sweep(ACCOUNT)
        assert (result.new_failures, result.posts) == (1, 2)
        [oncall] = parents_in(r, ONCALL)
        [random] = parents_in(r, RANDOM)
        assert not parents_in(r, "D0SOMEONE") and not parents_in(r, CHANNEL)
        for parent in (oncall, random):
            assert payload(parent)["runs"] == [run_id]
            assert "Scan weekly of sales-adls failed" in plain(parent.text)
            assert r.thread(parent)[-1].has_rerun_button  # each channel has the whole report
        ref = RunRef(ACCOUNT, "sales-adls", "weekly", run_id)
        posts = {p.channel: (p.posted_in, p.message_ts) for p in await r.store.run_posts([ref])}
        assert posts == {
            ONCALL: (ONCALL, oncall.response["ts"]),
            RANDOM: (RANDOM, random.response["ts"]),
        }
        record = await r.store.run_record(ref)
        assert record is not None and record.state == "posted" and record.channel == ONCALL
        assert record.message_ts == oncall.response["ts"]

        again = await watcher.sweep(ACCOUNT)
        assert again.posts == 0 and len(r.parents()) == 2


async def test_an_archived_channel_falls_back_to_the_alert_channel_saying_why(rig: RigFactory) -> None:
    """Before: a watch from an archived channel failed every post and nobody heard of the failure."""
    async with rig() as r:
        r.slack.refuse[GONE] = "is_archived"
        await r.store.add_watch(Watch(GONE, ACCOUNT, source="sales-adls"))
        watcher = r.watcher(routes=ROUTES)
        await watcher.sweep(ACCOUNT)
        run_id = await fail_sales_adls(r)
        result = await watcher.sweep(ACCOUNT)
        assert result.posts == 2  # on-call's own, and the fallback in the alert channel
        [oncall] = parents_in(r, ONCALL)
        [fallback] = parents_in(r, CHANNEL)
        head = plain(fallback.text)
        assert f"Posted here because <#{GONE}> (is_archived) refused it" in head
        assert "Scan weekly of sales-adls failed" in head
        assert payload(fallback)["for"] == [GONE] and payload(fallback)["runs"] == [run_id]
        assert "for" not in payload(oncall)
        assert r.thread(fallback)[-1].has_rerun_button
        ref = RunRef(ACCOUNT, "sales-adls", "weekly", run_id)
        posts = {p.channel: p for p in await r.store.run_posts([ref])}
        assert (posts[GONE].posted_in, posts[GONE].message_ts) == (CHANNEL, fallback.response["ts"])
        assert posts[GONE].note == "is_archived"
        record = await r.store.run_record(ref)
        assert record is not None and record.state == "posted"

        await watcher.sweep(ACCOUNT)
        assert len(r.parents()) == 2
        refused = [c for c in r.slack.calls_to("chat.postMessage") if c.args.get("channel") == GONE]
        assert len(refused) == 1  # tried once, not every sweep


async def test_a_private_channel_the_bot_left_falls_back_too(rig: RigFactory) -> None:
    async with rig() as r:
        r.slack.refuse[GONE] = "not_in_channel"
        r.slack.refuse_join[GONE] = "method_not_supported_for_channel_type"
        await r.store.add_watch(Watch(GONE, ACCOUNT, source="sales-adls"))
        watcher = r.watcher(routes=ROUTES)
        await watcher.sweep(ACCOUNT)
        await fail_sales_adls(r)
        await watcher.sweep(ACCOUNT)
        [fallback] = parents_in(r, CHANNEL)
        head = plain(fallback.text)
        assert (
            f"<#{GONE}> (not_in_channel, and joining failed: method_not_supported_for_channel_type)" in head
        )


async def test_when_the_alert_channel_has_the_failure_the_refusal_is_a_note_in_its_thread(
    rig: RigFactory,
) -> None:
    async with rig() as r:
        r.slack.refuse[GONE] = "channel_not_found"
        await r.store.add_watch(Watch(GONE, ACCOUNT, source="sales-adls"))
        watcher = r.watcher()  # no routes: the alert channel is the routed one
        await watcher.sweep(ACCOUNT)
        run_id = await fail_sales_adls(r)
        result = await watcher.sweep(ACCOUNT)
        assert result.posts == 1
        [parent] = r.parents()  # one parent in the alert channel, not two
        assert parent.args["channel"] == CHANNEL and "for" not in payload(parent)
        notes = [c for c in r.thread(parent) if "also meant for" in plain(c.text)]
        assert len(notes) == 1
        assert f"<#{GONE}> (channel_not_found)" in plain(notes[0].text)
        ref = RunRef(ACCOUNT, "sales-adls", "weekly", run_id)
        posts = {p.channel: p for p in await r.store.run_posts([ref])}
        assert posts[GONE].posted_in == CHANNEL and posts[GONE].message_ts == parent.response["ts"]


async def test_when_every_channel_refuses_it_is_logged_and_not_retried_forever(
    rig: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with rig() as r:
        r.slack.refuse[CHANNEL] = "is_archived"
        watcher = r.watcher()
        await watcher.sweep(ACCOUNT)
        run_id = await fail_sales_adls(r)
        await watcher.sweep(ACCOUNT)
        assert r.parents() == []
        record = await r.store.run_record(RunRef(ACCOUNT, "sales-adls", "weekly", run_id))
        assert record is not None and record.state == "posted"  # settled: nowhere to post
        [post] = await r.store.run_posts([RunRef(ACCOUNT, "sales-adls", "weekly", run_id)])
        assert (post.channel, post.posted_in, post.note) == (CHANNEL, None, "is_archived")
        assert "could not be posted in any channel" in caplog.text


async def test_a_claim_taken_over_posts_only_in_the_channels_still_missing(rig: RigFactory) -> None:
    """A process posted in the on-call channel (parent and report) and died before the watching channel
    got its post: the next sweep finds on-call's parent, records it, and posts in the other channel."""
    async with rig() as r:
        await r.store.add_watch(Watch(RANDOM, ACCOUNT, source="sales-adls"))
        run_id = await fail_sales_adls(r)
        ref = RunRef(ACCOUNT, "sales-adls", "weekly", run_id)
        assert await r.store.claim_run(ref, status="Failed", end_time=None, holder="dead")
        ts = f"{time.time():.6f}"
        metadata = {"event_type": FAILURE_EVENT, "event_payload": {"account": ACCOUNT, "runs": [run_id]}}
        r.slack.add_message(
            ONCALL, ts, "🔴 Scan weekly of sales-adls failed", user=BOT_USER_ID, metadata=metadata
        )
        r.slack.add_message(ONCALL, f"{float(ts) + 0.001:.6f}", "report", user=BOT_USER_ID, thread_ts=ts)
        await asyncio.sleep(0.25)
        result = await r.watcher(deadline=0.1, routes=ROUTES).sweep(ACCOUNT)
        assert result.posts == 1
        assert parents_in(r, ONCALL) == []  # not posted again there
        [random] = parents_in(r, RANDOM)
        assert payload(random)["runs"] == [run_id]
        posts = {p.channel: p.message_ts for p in await r.store.run_posts([ref])}
        assert posts == {ONCALL: ts, RANDOM: random.response["ts"]}
        record = await r.store.run_record(ref)
        assert record is not None and record.state == "posted" and record.message_ts == ts


async def test_a_channel_recorded_as_posted_is_not_searched_nor_posted_again(rig: RigFactory) -> None:
    async with rig() as r:
        await r.store.add_watch(Watch(RANDOM, ACCOUNT, source="sales-adls"))
        run_id = await fail_sales_adls(r)
        ref = RunRef(ACCOUNT, "sales-adls", "weekly", run_id)
        assert await r.store.claim_run(ref, status="Failed", end_time=None, holder="dead")
        await r.store.record_posts([ref], channel=ONCALL, posted_in=ONCALL, message_ts="1.000001")
        await asyncio.sleep(0.25)
        await r.watcher(deadline=0.1, routes=ROUTES).sweep(ACCOUNT)
        searched = {c.args.get("channel") for c in r.slack.calls_to("conversations.history")}
        assert searched == {RANDOM}
        assert [p.args["channel"] for p in r.parents()] == [RANDOM]


async def test_a_fallback_parent_posted_before_a_crash_is_found_not_posted_again(rig: RigFactory) -> None:
    async with rig() as r:
        r.slack.refuse[GONE] = "is_archived"
        await r.store.add_watch(Watch(GONE, ACCOUNT, source="sales-adls"))
        run_id = await fail_sales_adls(r)
        ref = RunRef(ACCOUNT, "sales-adls", "weekly", run_id)
        assert await r.store.claim_run(ref, status="Failed", end_time=None, holder="dead")
        await r.store.record_posts([ref], channel=ONCALL, posted_in=ONCALL, message_ts="1.000001")
        ts = f"{time.time():.6f}"  # the dead process's fallback parent in the alert channel
        metadata = {
            "event_type": FAILURE_EVENT,
            "event_payload": {"account": ACCOUNT, "runs": [run_id], "for": [GONE]},
        }
        r.slack.add_message(CHANNEL, ts, "⚠️ Posted here because …", user=BOT_USER_ID, metadata=metadata)
        await asyncio.sleep(0.25)
        result = await r.watcher(deadline=0.1, routes=ROUTES).sweep(ACCOUNT)
        assert result.posts == 0 and r.parents() == []
        posts = {p.channel: (p.posted_in, p.message_ts) for p in await r.store.run_posts([ref])}
        assert posts[GONE] == (CHANNEL, ts)


async def test_recovery_is_said_in_every_channel_that_got_the_failure(rig: RigFactory) -> None:
    async with rig() as r:
        await r.store.add_watch(Watch(RANDOM, ACCOUNT, source="sales-adls"))
        watcher = r.watcher(routes=ROUTES)
        await watcher.sweep(ACCOUNT)
        await fail_sales_adls(r)
        await watcher.sweep(ACCOUNT)
        parents = r.parents()
        assert len(parents) == 2
        r.clock[0] = NOW + timedelta(hours=1)
        r.add_run("sales-adls", "weekly", status="Succeeded", ended=NOW + timedelta(minutes=40))
        result = await watcher.sweep(ACCOUNT)
        assert result.recoveries == 1
        for parent in parents:
            last = r.thread(parent)[-1]
            assert "Scan weekly of sales-adls recovered 2026-11-28 08:40 UTC" in shown(last.text)
