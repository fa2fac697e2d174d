"""One thread per failing scan, through the sandbox and the fake Slack: new → repeat → recovered, for a
single scan and for a storm; a route's user group mentioned on new failures only; a muted source's
failures recorded and not posted. Each parent edit keeps the message metadata (the restart dedupe looks
for its run ids) and valid Block Kit."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

from bot.store import Mute, RunRef
from handlers.render.watch_posts import FAILURE_EVENT
from handlers.watch.routing import Route
from tests.slack.fake_slack import Call
from tests.watch.conftest import (
    ACCOUNT,
    CHANNEL,
    NOW,
    Rig,
    RigFactory,
    assert_block_kit,
    shown,
    storm_world,
)

ROOT = Path(__file__).resolve().parents[2]


def parent_edits(r: Rig, parent: Call) -> list[Call]:
    ts = parent.response["ts"]
    return [c for c in r.slack.calls_to("chat.update", ok=True) if c.args.get("ts") == ts]


def held(r: Rig, parent: Call) -> dict[str, object]:
    """The parent as the fake Slack holds it now: its text, blocks and metadata."""
    message = r.slack.messages[(str(parent.args["channel"]), str(parent.response["ts"]))]
    assert_block_kit(message.blocks)
    return {"text": shown(message.text), "metadata": message.metadata, "blocks": message.blocks}


async def test_new_repeat_recovered_then_a_new_thread(rig: RigFactory) -> None:
    async with rig() as r:
        watcher = r.watcher()
        await watcher.sweep(ACCOUNT)
        first = r.add_run("sales-adls", "weekly", status="Failed", ended=NOW - timedelta(minutes=2))
        await watcher.sweep(ACCOUNT)
        [parent] = r.parents()
        assert_block_kit(parent.args["blocks"])
        screen = shown(parent.text)
        # the first screen: verdict word, scan, when, the classified error, the cause
        assert screen.startswith("🔴 FAIL · Scan weekly of sales-adls failed 2026-11-28 07:58 UTC: ")
        assert "Purview lacks data access (AuthorizationPermissionMismatch)" in screen
        assert "Cause:" in screen
        assert parent.button("purview_alert_recheck") and parent.button("purview_alert_ack")
        payload = parent.args["metadata"]["event_payload"]
        assert payload["runs"] == [first["id"]] and payload["failures"] == 1
        assert (payload["sources"], payload["scans"]) == (["sales-adls"], ["weekly"])
        replies = len(r.thread(parent))

        # a repeat: a short reply in the open thread, the parent edited, no new parent
        for n, minutes in ((2, 30), (3, 50)):
            r.clock[0] = NOW + timedelta(minutes=minutes + 2)
            again = r.add_run("sales-adls", "weekly", status="Failed", ended=NOW + timedelta(minutes=minutes))
            result = await watcher.sweep(ACCOUNT)
            assert (result.new_failures, result.posts) == (1, 1)
            assert len(r.parents()) == 1, "a repeat failure opened a new thread"
            thread = r.thread(parent)
            assert len(thread) == replies + n - 1
            reply = shown(thread[-1].text)
            assert reply.startswith("🔁 Scan weekly of sales-adls failed again 2026-11-28 ")
            assert again["id"] in reply and not thread[-1].has_rerun_button
            now = held(r, parent)
            assert f"Still failing since 2026-11-28 07:58 UTC, {n} failed runs" in str(now["text"])
            metadata = now["metadata"]
            assert isinstance(metadata, dict) and metadata["event_type"] == FAILURE_EVENT
            assert metadata["event_payload"]["runs"][0] == first["id"]
            assert again["id"] in metadata["event_payload"]["runs"]
            assert metadata["event_payload"]["failures"] == n
            record = await r.store.run_record(RunRef(ACCOUNT, "sales-adls", "weekly", str(again["id"])))
            assert record is not None and record.state == "posted"
            assert record.message_ts == parent.response["ts"]
        assert all(isinstance(c.args.get("metadata"), dict) for c in parent_edits(r, parent))

        # recovery: a reply in that thread, the parent says so, the thread is closed
        r.clock[0] = NOW + timedelta(hours=2)
        r.add_run("sales-adls", "weekly", status="Succeeded", ended=NOW + timedelta(minutes=90))
        result = await watcher.sweep(ACCOUNT)
        assert result.recoveries == 1
        assert "recovered 2026-11-28 09:30 UTC" in shown(r.thread(parent)[-1].text)
        now = held(r, parent)
        text = str(now["text"])
        assert text.startswith("✅ RECOVERED 2026-11-28 09:30 UTC · Scan weekly of sales-adls failed")
        assert "after failing since 2026-11-28 07:58 UTC, 3 failed runs" in text
        metadata = now["metadata"]
        assert isinstance(metadata, dict) and len(metadata["event_payload"]["runs"]) == 3
        assert not any(
            isinstance(b, dict) and "purview_alert_ack" in str(b)
            for b in now["blocks"]  # type: ignore[union-attr]
        )
        cursor = (await r.store.cursors(ACCOUNT))[("sales-adls", "weekly")]
        assert cursor.thread_ts is None and cursor.failing_since is None

        # the next failure opens a new thread
        r.clock[0] = NOW + timedelta(hours=3)
        r.add_run("sales-adls", "weekly", status="Failed", ended=NOW + timedelta(minutes=170))
        await watcher.sweep(ACCOUNT)
        assert len(r.parents()) == 2
        assert "FAIL · Scan weekly of sales-adls" in shown(r.parents()[-1].text)


async def test_a_storm_parent_takes_repeats_and_recovers_scan_by_scan(rig: RigFactory) -> None:
    world, names = storm_world(3, NOW - timedelta(minutes=10))
    async with rig(world) as r:
        watcher = r.watcher()
        await watcher.sweep(ACCOUNT)
        [parent] = r.parents()
        payload = parent.args["metadata"]["event_payload"]
        assert sorted(payload["sources"]) == names and payload["failures"] == 3
        replies = len(r.thread(parent))

        r.clock[0] = NOW + timedelta(minutes=30)
        r.add_run(names[0], "nightly", status="Failed", ended=NOW + timedelta(minutes=20))
        result = await watcher.sweep(ACCOUNT)
        assert (result.new_failures, result.posts) == (1, 1) and len(r.parents()) == 1
        assert len(r.thread(parent)) == replies + 1
        assert f"Scan nightly of {names[0]} failed again" in shown(r.thread(parent)[-1].text)
        assert "Still failing since 2026-11-28 07:50 UTC, 4 failed runs of 3 scans" in str(
            held(r, parent)["text"]
        )

        r.clock[0] = NOW + timedelta(hours=1)
        for name in names[:2]:
            r.add_run(name, "nightly", status="Succeeded", ended=NOW + timedelta(minutes=50))
        result = await watcher.sweep(ACCOUNT)
        assert result.recoveries == 2
        now = held(r, parent)
        assert "2 of 3 scans recovered" in str(now["text"]) and "RECOVERED" not in str(now["text"])

        r.clock[0] = NOW + timedelta(hours=2)
        r.add_run(names[2], "nightly", status="Succeeded", ended=NOW + timedelta(minutes=100))
        await watcher.sweep(ACCOUNT)
        now = held(r, parent)
        assert str(now["text"]).startswith("✅ RECOVERED 2026-11-28 09:40 UTC · 3 scans failed:")
        metadata = now["metadata"]
        assert isinstance(metadata, dict) and len(metadata["event_payload"]["runs"]) == 4


async def test_a_routes_user_group_is_mentioned_on_new_failures_only(rig: RigFactory) -> None:
    async with rig() as r:
        routes = [Route(CHANNEL, account=ACCOUNT, mention="S0ONCALL")]
        watcher = r.watcher(routes=routes)
        await watcher.sweep(ACCOUNT)
        r.add_run("sales-adls", "weekly", status="Failed", ended=NOW - timedelta(minutes=2))
        await watcher.sweep(ACCOUNT)
        [parent] = r.parents()
        assert parent.text.startswith("<!subteam^S0ONCALL> ")
        assert "<!subteam^S0ONCALL>" in parent.args["text"]  # the notification names the group too
        r.clock[0] = NOW + timedelta(minutes=40)
        r.add_run("sales-adls", "weekly", status="Failed", ended=NOW + timedelta(minutes=30))
        await watcher.sweep(ACCOUNT)
        assert "subteam" not in r.thread(parent)[-1].text
        assert parent_edits(r, parent) and all("subteam" not in c.text for c in parent_edits(r, parent))


async def test_a_muted_sources_failures_are_recorded_not_posted_until_the_mute_expires(
    rig: RigFactory,
) -> None:
    async with rig() as r:
        watcher = r.watcher()
        await watcher.sweep(ACCOUNT)
        await r.store.mute(Mute(ACCOUNT, "SALES-ADLS", NOW + timedelta(hours=1), "U0DANA"))
        muted = r.add_run("sales-adls", "weekly", status="Failed", ended=NOW - timedelta(minutes=2))
        result = await watcher.sweep(ACCOUNT)
        assert result.new_failures == 1 and r.parents() == []
        record = await r.store.run_record(RunRef(ACCOUNT, "sales-adls", "weekly", str(muted["id"])))
        assert record is not None and record.state == "posted"  # recorded: not news again later
        [post] = await r.store.run_posts([record.ref])
        assert post.posted_in is None and post.note and post.note.startswith("muted until")

        # the mute expires: the next failure is posted, the muted one is not
        r.clock[0] = NOW + timedelta(minutes=70)
        r.add_run("sales-adls", "weekly", status="Failed", ended=NOW + timedelta(minutes=65))
        await watcher.sweep(ACCOUNT)
        [parent] = r.parents()
        assert muted["id"] not in parent.args["metadata"]["event_payload"]["runs"]


def test_the_lifecycle_docs_are_what_the_script_renders(tmp_path: Path) -> None:
    """docs/blocks/lifecycle-*.json are regenerated by scripts/render-lifecycle-docs: up to date, valid."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import lifecycle_docs
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    for path in lifecycle_docs.render(tmp_path):
        committed = ROOT / "docs" / "blocks" / path.name
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"{committed.relative_to(ROOT)} is stale: run scripts/render-lifecycle-docs"
        )
        document = json.loads(path.read_text(encoding="utf-8"))
        assert_block_kit(document["parent"]["blocks"])
        assert document["parent"]["metadata"]["event_type"] == FAILURE_EVENT
        for message in document["thread"]:
            assert_block_kit(message["blocks"])


async def test_a_thread_that_takes_no_reply_gets_a_new_parent(rig: RigFactory) -> None:
    """The open thread's parent was deleted (Slack refuses the reply): the repeat opens a new thread
    rather than staying claimed and retried forever."""
    async with rig() as r:
        watcher = r.watcher()
        await watcher.sweep(ACCOUNT)
        r.add_run("sales-adls", "weekly", status="Failed", ended=NOW - timedelta(minutes=2))
        await watcher.sweep(ACCOUNT)
        [parent] = r.parents()
        ts = str(parent.response["ts"])
        r.slack.fail("chat.postMessage", "thread_not_found", when=lambda args: args.get("thread_ts") == ts)
        r.clock[0] = NOW + timedelta(minutes=30)
        again = r.add_run("sales-adls", "weekly", status="Failed", ended=NOW + timedelta(minutes=20))
        result = await watcher.sweep(ACCOUNT)
        assert result.posts == 1 and len(r.parents()) == 2
        new = r.parents()[-1]
        assert new.args["metadata"]["event_payload"]["runs"] == [again["id"]]
        record = await r.store.run_record(RunRef(ACCOUNT, "sales-adls", "weekly", str(again["id"])))
        assert record is not None and record.state == "posted" and record.message_ts == new.response["ts"]
        cursor = (await r.store.cursors(ACCOUNT))[("sales-adls", "weekly")]
        assert cursor.thread_ts == new.response["ts"]  # the next repeat and the recovery go there
