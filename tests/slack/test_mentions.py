"""`@purview-bot check …` in a thread answers in that thread; a DM works the same way."""

from __future__ import annotations

import time

from tests.slack import signing
from tests.slack.conftest import CHANNEL, BotHarness
from tests.slack.fake_slack import FakeSlack


async def test_mention_in_a_thread_reports_into_that_thread(bot: BotHarness, slack: FakeSlack) -> None:
    parent = "1700000000.000100"
    slack.add_message(CHANNEL, parent, "ingestion is broken again, anyone?")
    ack = await bot.send(signing.app_mention("check sales-adls", CHANNEL, "1700000050.000200", parent))
    assert ack.status == 200
    assert ack.elapsed < 1.0

    report = await bot.report(CHANNEL, parent)
    assert "source-access" in report.thread_text
    assert "sales-adls" in report.thread[0].text
    await slack.settle()
    posted = slack.calls_to("chat.postMessage", ok=True)
    assert all(c.args.get("thread_ts") == parent for c in posted), "posted outside the thread"
    assert all(c.args.get("channel") == CHANNEL for c in posted)


async def test_mention_outside_a_thread_starts_one_on_the_mention(bot: BotHarness, slack: FakeSlack) -> None:
    ts = f"{int(time.time())}.000300"
    await bot.send(signing.app_mention("check healthy-blob", CHANNEL, ts))
    report = await bot.report(CHANNEL, ts)
    assert "healthy-blob" in report.thread_text


async def test_anything_else_gets_usage_in_the_thread(bot: BotHarness, slack: FakeSlack) -> None:
    ts = f"{int(time.time())}.000400"
    await bot.send(signing.app_mention("what's up?", CHANNEL, ts))
    reply = await slack.wait_for("chat.postMessage", lambda c: c.args.get("thread_ts") == ts)
    assert "check" in reply.text
    await slack.settle()
    assert not any(c.has_rerun_button for c in slack.calls_to("chat.postMessage"))


async def test_direct_message_works_like_a_mention(bot: BotHarness, slack: FakeSlack) -> None:
    ts = f"{int(time.time())}.000500"
    ack = await bot.send(signing.dm("check sales-adls", channel="D0DMCHANNEL", ts=ts))
    assert ack.status == 200
    report = await bot.report("D0DMCHANNEL", ts)
    assert "source-access" in report.thread_text
    assert all(c.args.get("channel") == "D0DMCHANNEL" for c in slack.calls_to("chat.postMessage"))
