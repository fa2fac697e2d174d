"""The Re-run button (and `recheck` in the thread): new findings in the same thread, and what changed."""

from __future__ import annotations

import time

from sandbox import Sandbox
from tests.slack import signing
from tests.slack.conftest import CHANNEL, BotHarness, plain
from tests.slack.fake_slack import FakeSlack

# the requester's Entra user (Slack email → Graph): failing, reader-role is unknown, a toggleable problem
GRAPH_USERS = r"/graph/v1\.0/users"


async def test_rerun_posts_new_findings_in_the_thread_with_what_changed(
    bot: BotHarness, slack: FakeSlack, sample_sandbox: Sandbox
) -> None:
    # first run: Graph fails, so reader-role is unknown
    sample_sandbox.add_fault({"path": GRAPH_USERS, "status": 500})
    await bot.command("sales-adls")
    first = await bot.report(CHANNEL)
    assert "reader-role" in (await slack.wait_for("chat.update")).text

    # Azure recovers; the click re-runs the diagnosis in the same thread
    sample_sandbox.clear_faults()
    clicked = time.monotonic()
    ack = await bot.click(first.rerun_value, CHANNEL, first.last.response["ts"], first.thread_ts)
    assert ack.status == 200
    assert ack.elapsed < 1.0
    second = await bot.report(CHANNEL, first.thread_ts, after=clicked)
    assert "fixed: reader-role" in plain(second.thread[0].text), "the re-run does not start with what changed"
    assert "source-access" in second.thread_text  # still failing: the findings are all there again
    assert not [
        c for c in slack.calls_to("chat.postMessage") if c.at >= clicked and not c.args.get("thread_ts")
    ], "the re-run posted outside the thread"
    updated = await slack.wait_for(
        "chat.update",
        lambda c: c.at >= clicked and c.args.get("ts") == first.thread_ts and "Checking" not in c.text,
    )
    assert "source-access" in updated.text
    assert "reader-role" not in updated.text, "the parent summary still lists the fixed problem"

    # and back: the fault returns, the next click (on the new button) calls it new
    sample_sandbox.add_fault({"path": GRAPH_USERS, "status": 500})
    clicked = time.monotonic()
    await bot.click(second.rerun_value, CHANNEL, second.last.response["ts"], first.thread_ts)
    third = await bot.report(CHANNEL, first.thread_ts, after=clicked)
    assert "new: reader-role" in plain(third.thread[0].text)


async def test_recheck_mention_in_the_bots_thread_reruns_that_source(
    bot: BotHarness, slack: FakeSlack, sample_sandbox: Sandbox
) -> None:
    sample_sandbox.add_fault({"path": GRAPH_USERS, "status": 500})
    await bot.command("sales-adls")
    first = await bot.report(CHANNEL)
    sample_sandbox.clear_faults()

    asked = time.monotonic()
    ack = await bot.send(
        signing.app_mention("recheck", CHANNEL, f"{int(time.time())}.000900", first.thread_ts)
    )
    assert ack.status == 200
    again = await bot.report(CHANNEL, first.thread_ts, after=asked)
    replies = slack.calls_to("conversations.replies")
    assert replies and replies[-1].args.get("ts") == first.thread_ts
    assert str(replies[-1].args.get("include_all_metadata")).lower() in ("1", "true")
    assert "fixed: reader-role" in plain(again.thread_text)
