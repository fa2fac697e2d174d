"""`/purview-check changes SOURCE [ACCOUNT] [7d]` through the real wire: a signed slash command to the bot,
the sample tenant's sandbox behind it, the answer only to the asker, the likely trigger first."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from sandbox import Sandbox
from tests.slack.conftest import BotHarness, bot, plain, sample_sandbox, slack, start_bot
from tests.slack.fake_slack import FakeSlack

__all__ = ["bot", "sample_sandbox", "slack", "start_bot"]  # the Slack suite's fixtures


async def test_changes_answers_the_asker_with_the_trigger_first(
    bot: BotHarness, slack: FakeSlack, sample_sandbox: Sandbox
) -> None:
    ack = await bot.command("changes sales-adls")
    assert "Reading what changed on sales-adls" in plain(bot.ephemeral_text(ack))
    answer = plain(await bot.ephemeral(ack, "likely trigger"))
    assert "Storage Blob Data Reader for contoso-pv deleted" in answer and "bob@contoso.com" in answer
    assert answer.index("likely trigger") < answer.index("adele.vance@contoso.com")
    [reply] = [c for c in slack.calls_to("response_url") if c.response_id == ack.response_id]
    assert reply.args.get("blocks") and reply.args.get("response_type") == "ephemeral"
    await slack.settle()
    assert not slack.calls_to("chat.postMessage")  # only to the asker
    reads = [r for r in sample_sandbox.requests if "eventtypes" in r.path]
    assert reads and all("eventTimestamp ge" in r.query["$filter"] for r in reads)


async def test_changes_with_days_reads_that_window(
    bot: BotHarness, slack: FakeSlack, sample_sandbox: Sandbox
) -> None:
    ack = await bot.command("changes crm-sql 30d")
    answer = plain(await bot.ephemeral(ack, "AllowAllWindowsAzureIps deleted"))
    assert "last 30 days" in answer and "AllowAllWindowsAzureIps deleted" in answer
    ranges = {
        tuple(datetime.fromisoformat(t) for t in r.query["$filter"].split("'")[1:4:2])
        for r in sample_sandbox.requests
        if "eventtypes" in r.path
    }
    # the last 14 days at once, the 16 before them once the window is known: 30 days, each read once
    assert sorted(round((end - start) / timedelta(days=1)) for start, end in ranges) == [14, 16]
    assert min(start for start, _ in ranges) == max(start for start, _ in ranges) - timedelta(days=16)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("changes", "needs a SOURCE"),
        ("changes sales-adls 120d", "looks back 1 to 90 days"),
        ("changes sales-adls 2w", "is not a number of days"),
    ],
)
async def test_changes_with_a_wrong_shape_is_usage_and_reads_nothing(
    bot: BotHarness, slack: FakeSlack, sample_sandbox: Sandbox, text: str, said: str
) -> None:
    ack = await bot.command(text)
    assert said in plain(bot.ephemeral_text(ack))
    await slack.settle()
    assert not slack.calls_to("response_url")
    assert not [r for r in sample_sandbox.requests if r.host_area != "token"]
