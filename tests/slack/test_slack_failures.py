"""Slack misbehaving: 429 is retried (the message arrives once), 500s are logged and the bot stays up,
`not_in_channel` joins and retries, and when joining fails the report goes to the response_url."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

import pytest

from tests.slack.conftest import CHANNEL, BotHarness
from tests.slack.fake_slack import FakeSlack
from tests.slack.test_slash_command import FIX


async def test_rate_limited_once_the_message_arrives_exactly_once(bot: BotHarness, slack: FakeSlack) -> None:
    slack.fail("chat.postMessage", status=429, retry_after=1, times=1)
    await bot.command("sales-adls")
    report = await bot.report(CHANNEL)
    await slack.settle()
    posts = slack.calls_to("chat.postMessage")
    assert [c.status for c in posts].count(429) == 1
    assert posts[0].status == 429
    delivered = Counter(
        (c.args.get("channel"), c.args.get("thread_ts"), c.text)
        for c in slack.calls_to("chat.postMessage", ok=True)
    )
    assert max(delivered.values()) == 1, f"a message was delivered twice: {delivered}"
    parents = [c for c in slack.calls_to("chat.postMessage", ok=True) if not c.args.get("thread_ts")]
    assert len(parents) == 1
    assert posts[1].at - posts[0].at >= 0.9, "the retry did not honour Retry-After"
    assert report.last.ok


async def test_slack_500s_are_logged_counted_and_the_bot_stays_up(
    bot: BotHarness, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    slack.fail("chat.postMessage", status=500)
    ack = await bot.command("sales-adls")
    assert ack.status == 200
    await slack.wait_for("chat.postMessage")
    deadline = time.monotonic() + 15  # slack-sdk retries 5xx with a jittered backoff before giving up
    while not [r for r in caplog.records if "chat.postMessage" in r.getMessage()]:
        assert time.monotonic() < deadline, "no log record names the failing Slack method"
        await asyncio.sleep(0.05)
    assert len(slack.calls_to("chat.postMessage")) >= 2, "a 500 was not retried"
    assert not slack.calls_to("chat.postMessage", ok=True)

    assert await bot.healthz() == 200
    async with bot.session.get(f"{bot.url}/metrics") as resp:
        metrics = await resp.text()
    errors = [
        line
        for line in metrics.splitlines()
        if line.startswith("purview_bot_slack_api_errors_total{") and 'method="chat.postMessage"' in line
    ]
    assert errors and float(errors[0].rsplit(" ", 1)[1]) >= 1, metrics

    slack.clear_failures()
    later = await bot.command("healthy-blob")
    assert later.status == 200
    await bot.report(CHANNEL, after=later.received_at - later.elapsed)


async def test_not_in_channel_joins_and_retries(bot: BotHarness, slack: FakeSlack) -> None:
    slack.fail("chat.postMessage", error="not_in_channel", times=1)
    await bot.command("sales-adls")
    report = await bot.report(CHANNEL)
    joins = slack.calls_to("conversations.join")
    assert [c.args.get("channel") for c in joins] == [CHANNEL]
    assert report.parent is not None and joins[0].at < report.parent.at
    await slack.settle()
    assert len([c for c in slack.calls_to("chat.postMessage", ok=True) if not c.args.get("thread_ts")]) == 1


async def test_join_refused_sends_instructions_and_the_report_to_response_url(
    bot: BotHarness, slack: FakeSlack
) -> None:
    slack.fail("chat.postMessage", error="not_in_channel")
    slack.fail("conversations.join", error="method_not_supported_for_channel_type")
    ack = await bot.command("sales-adls", channel_id="G0PRIVATE")
    assert ack.status == 200
    answer = await bot.ephemeral(ack, "/invite @purview-bot", within=15)
    answer = await bot.ephemeral(ack, "source-access", within=15)
    assert FIX in answer, "the findings (with their fix) did not reach the user"
    assert slack.calls_to("conversations.join")
    assert not slack.calls_to("chat.postMessage", ok=True)
