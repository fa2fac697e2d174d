"""Slack retries and replays are worked once (issue 9, item 3): through real signed HTTP, with the store
(SQLite) and without one.

Slack re-sends an event with `X-Slack-Retry-Num` / `X-Slack-Retry-Reason` when it thinks the bot did not
get it; a captured signed request can be replayed byte for byte within the signature's five minutes.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store import SqlStore
from handlers.slack.dedupe import RecentKeys, delivery_key
from sandbox import Sandbox
from tests.slack import signing
from tests.slack.conftest import CHANNEL, BotFactory, BotHarness
from tests.slack.fake_slack import Call, FakeSlack
from tests.slack.signing import SlackRequest


async def deliver(
    bot: BotHarness, request: SlackRequest, *, timestamp: int | None = None, retry: int | None = None
) -> int:
    """POST `request` signed as Slack signs it (the same `timestamp` gives the same bytes: a replay);
    `retry`: with Slack's retry headers, as Slack re-sends an event it thinks was lost."""
    headers = {"Content-Type": request.content_type}
    headers.update(signing.signed_headers(bot.secret, request.body, timestamp))
    if retry is not None:
        headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"})
    async with bot.session.post(bot.events_url, data=request.body.encode(), headers=headers) as resp:
        await resp.read()
        return resp.status


def reports_in(slack: FakeSlack, channel: str, thread_ts: str) -> list[Call]:
    """The finished reports in a thread: one message with the Re-run button each."""
    return [c for c in slack.thread(channel, thread_ts) if c.has_rerun_button]


def _is_summary(call: Call) -> bool:
    """The report's own message: it carries the report's metadata (source, account, scan)."""
    return (call.args.get("metadata") or {}).get("event_type") == "purview_report"


def parents(slack: FakeSlack, channel: str) -> list[Call]:
    """Top-level messages the bot posted in `channel` (a slash command's "Checking…" parent each)."""
    return [
        c
        for c in slack.calls_to("chat.postMessage", ok=True)
        if c.args.get("channel") == channel and not c.args.get("thread_ts")
    ]


async def metric(bot: BotHarness, pattern: str) -> float:
    """The value of the /metrics sample matching `pattern` (0 when absent)."""
    async with bot.session.get(f"{bot.url}/metrics") as resp:
        text = await resp.text()
    found = re.search(pattern + r"\s+([0-9.e+]+)", text)
    return float(found.group(1)) if found else 0.0


@pytest.fixture(params=["sqlite", "no-store"])
async def any_bot(
    request: pytest.FixtureRequest, start_bot: BotFactory, sample_sandbox: Sandbox, tmp_path: Path
) -> AsyncIterator[BotHarness]:
    """The bot with its SQLite store, and with none (a database that cannot be opened)."""
    env = {}
    if request.param == "no-store":
        env["PURVIEW_BOT_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'no-such-dir' / 'x.db'}"
    async with start_bot(sandbox=sample_sandbox, env=env) as harness:
        yield harness


async def test_slack_retries_of_a_mention_give_one_report(any_bot: BotHarness, slack: FakeSlack) -> None:
    bot = any_bot
    ts = f"{int(time.time())}.000700"
    mention = signing.app_mention("check sales-adls", CHANNEL, ts)
    assert await deliver(bot, mention) == 200
    assert await deliver(bot, mention, retry=1) == 200  # while the first delivery is at work
    await bot.report(CHANNEL, ts)
    assert await deliver(bot, mention, retry=2) == 200  # after it finished
    await slack.settle()
    assert len(reports_in(slack, CHANNEL, ts)) == 1, "a retry was worked again"
    summaries = [c for c in slack.thread(CHANNEL, ts) if _is_summary(c)]
    assert len(summaries) == 1, "a retry posted a second summary"
    assert await metric(bot, r'purview_bot_slack_duplicates_total\{kind="event",layer="memory"\}') == 2


async def test_a_retry_of_an_event_never_seen_is_worked(any_bot: BotHarness, slack: FakeSlack) -> None:
    """The first delivery got lost on the way: Slack's retry is the only one the bot sees."""
    ts = f"{int(time.time())}.000710"
    assert await deliver(any_bot, signing.app_mention("check healthy-blob", CHANNEL, ts), retry=1) == 200
    report = await any_bot.report(CHANNEL, ts)
    assert "healthy-blob" in report.thread_text
    await slack.settle()
    assert len(reports_in(slack, CHANNEL, ts)) == 1


async def test_a_replayed_slash_command_posts_one_parent(any_bot: BotHarness, slack: FakeSlack) -> None:
    command = signing.slash_command("sales-adls", response_url=slack.response_url("replayed"))
    stamp = int(time.time())
    assert await deliver(any_bot, command, timestamp=stamp) == 200
    assert await deliver(any_bot, command, timestamp=stamp) == 200  # the same bytes, within 5 minutes
    await any_bot.report(CHANNEL)
    await slack.settle(quiet=1.0)
    assert len(parents(slack, CHANNEL)) == 1, "the replay posted a second parent"

    # a new command (its own trigger and response URL) is of course worked
    asked = time.monotonic()
    await any_bot.command("healthy-blob")
    await any_bot.report(CHANNEL, after=asked)
    assert len(parents(slack, CHANNEL)) == 2


async def test_a_replayed_rerun_click_runs_once(any_bot: BotHarness, slack: FakeSlack) -> None:
    await any_bot.command("healthy-blob")
    first = await any_bot.report(CHANNEL)
    clicked = time.monotonic()
    click = signing.block_action(
        first.rerun_value,
        CHANNEL,
        first.last.response["ts"],
        first.thread_ts,
        slack.response_url("click"),
    )
    stamp = int(time.time())
    assert await deliver(any_bot, click, timestamp=stamp) == 200
    assert await deliver(any_bot, click, timestamp=stamp) == 200
    await any_bot.report(CHANNEL, first.thread_ts, after=clicked)
    await slack.settle(quiet=1.0)
    rerun = [c for c in reports_in(slack, CHANNEL, first.thread_ts) if c.at >= clicked]
    assert len(rerun) == 1, "the replayed click ran the diagnosis again"


async def test_the_store_recognises_a_replay_after_a_restart(
    start_bot: BotFactory, sample_sandbox: Sandbox, slack: FakeSlack
) -> None:
    """The in-memory set dies with the process; the store (shared by replicas) does not."""
    command = signing.slash_command("healthy-blob", response_url=slack.response_url("before-restart"))
    ts = f"{int(time.time())}.000720"
    mention = signing.app_mention("check healthy-blob", "C222", ts)
    stamp = int(time.time())
    async with start_bot(sandbox=sample_sandbox) as bot:
        assert await deliver(bot, command, timestamp=stamp) == 200
        assert await deliver(bot, mention) == 200
        await bot.report(CHANNEL)
        await bot.report("C222", ts)
        await slack.settle()
    posted = len(slack.calls_to("chat.postMessage"))

    async with start_bot(sandbox=sample_sandbox) as bot:  # the same database, a new process
        assert await deliver(bot, command, timestamp=stamp) == 200
        assert await deliver(bot, mention, retry=1) == 200
        await slack.settle(quiet=1.0)
        assert len(slack.calls_to("chat.postMessage")) == posted, "the replay was worked after the restart"
        assert (
            await metric(bot, r'purview_bot_slack_duplicates_total\{kind="interaction",layer="store"\}') == 1
        )
        assert await metric(bot, r'purview_bot_slack_duplicates_total\{kind="event",layer="store"\}') == 1


async def test_a_failing_store_still_works_the_command_and_says_so(
    bot: BotHarness, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object, **kwargs: object) -> bool:
        raise OSError("disk I/O error")

    monkeypatch.setattr(SqlStore, "claim_delivery", broken)
    command = signing.slash_command("healthy-blob", response_url=slack.response_url("store-down"))
    stamp = int(time.time())
    assert await deliver(bot, command, timestamp=stamp) == 200
    assert await deliver(bot, command, timestamp=stamp) == 200  # this process's memory still knows it
    await bot.report(CHANNEL)
    await slack.settle(quiet=1.0)
    assert len(parents(slack, CHANNEL)) == 1
    assert any("could not record Slack delivery" in r.getMessage() for r in caplog.records)


# the pieces ------------------------------------------------------------------------------------------


def test_delivery_keys() -> None:
    assert delivery_key({"type": "event_callback", "event_id": "Ev123"}) == "event:Ev123"
    assert delivery_key({"type": "event_callback"}) is None
    command = {"command": "/purview-check", "trigger_id": "1.2.x", "response_url": "https://h/1"}
    key = delivery_key(command)
    assert key is not None and key.startswith("interaction:") and len(key) < 64
    assert delivery_key(dict(command)) == key  # a replay
    assert delivery_key({**command, "response_url": "https://h/2"}) != key  # another invocation
    assert delivery_key({**command, "trigger_id": "1.2.y"}) != key
    assert delivery_key({"type": "url_verification"}) is None


def test_recent_keys_forget_after_the_window_and_beyond_the_bound() -> None:
    now = [0.0]
    keys = RecentKeys(ttl_seconds=60, max_keys=3, clock=lambda: now[0])
    assert keys.add("a") and not keys.add("a")
    now[0] = 59.0
    assert not keys.add("a")
    now[0] = 61.0
    assert keys.add("a"), "kept beyond its window"
    for name in ("b", "c", "d"):
        assert keys.add(name)
    assert len(keys) == 3
    assert keys.add("a"), "the oldest was not forgotten beyond the bound"
