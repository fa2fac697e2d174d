"""`/purview-check`: ack within the request, then the parent message, its summary and the findings thread."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sandbox import Sandbox
from tests.slack.conftest import BOT_TOKEN, CHANNEL, BotFactory, BotHarness, plain
from tests.slack.fake_slack import FakeSlack

DOC_URL = "https://learn.microsoft.com/en-us/purview/troubleshoot-connections#permission-the-credential-on-the-data-source"
FIX = (  # the command to copy: the scope in a variable, one flag per line
    "SCOPE=/subscriptions/7e2e9e63-bacb-4459-8c63-99796f32e7cf/resourceGroups/rg-sales-data/providers/"
    "Microsoft.Storage/storageAccounts/stsalesadls\n"
    "az role assignment create \\\n"
    "  --assignee-object-id a364a7de-0aab-448a-b69b-c65d39340d0f \\\n"
    "  --assignee-principal-type ServicePrincipal \\\n"
    "  --role 'Storage Blob Data Reader' \\\n"
    '  --scope "$SCOPE"'
)
# sales-adls in the sample tenant: its last run failed, because Purview lacks Storage Blob Data Reader;
# the summary says so with its status word and the cause
SALES_ADLS_FAILING = (
    "FAIL",
    "scan weekly: contoso-pv cannot read blobs in stsalesadls: it has Reader but no data role",
)


async def test_ack_is_immediate_then_parent_summary_and_findings_thread(
    bot: BotHarness, slack: FakeSlack, sample_sandbox: Sandbox
) -> None:
    # Purview answering slowly must not delay the ack: Slack gives up after 3 s
    sample_sandbox.add_fault({"path": r"/scan/datasources", "delayMs": 1000, "times": 3})
    ack = await bot.command("sales-adls")

    assert ack.status == 200
    assert ack.elapsed < 0.8, f"the ack took {ack.elapsed:.2f}s: it waited for Azure"
    assert "Checking sales-adls" in plain(bot.ephemeral_text(ack))
    assert not [c for c in slack.calls_to("chat.postMessage") if c.at <= ack.received_at]

    report = await bot.report(CHANNEL)
    parent = report.parent
    assert parent is not None
    assert parent.at >= ack.received_at
    assert "Checking sales-adls" in plain(parent.text)
    assert parent.args.get("metadata", {}).get("event_type") == "purview_report"
    assert parent.args["metadata"]["event_payload"]["source"] == "sales-adls"

    update = await slack.wait_for("chat.update", lambda c: c.args.get("ts") == report.thread_ts)
    assert update.args["channel"] == CHANNEL
    assert "Checking" not in update.text
    for words in SALES_ADLS_FAILING:
        assert words in update.text, f"summary does not say {words}: {update.text}"
    assert update.args["text"].startswith("FAIL sales-adls (contoso-pv): scan weekly: contoso-pv cannot read")

    assert report.thread, "no findings in the parent's thread"
    assert all(c.args["channel"] == CHANNEL for c in report.thread)
    text = report.thread_text
    assert "✖ FAIL · source-access · scan weekly" in text
    assert "contoso-pv cannot read blobs in stsalesadls: it has Reader but no data role" in text
    assert DOC_URL in text
    assert FIX in text
    assert report.thread[-1] is report.last, "the Re-check button is not on the last thread message"
    assert all(not c.has_rerun_button for c in report.thread[:-1])
    assert update.button("purview_rerun") is not None, "the Re-check button is not on the parent"
    assert "source-access" in text and "Show evidence" in text
    assert all(c.authorization == f"Bearer {BOT_TOKEN}" for c in slack.calls_to("chat.postMessage"))


@pytest.mark.parametrize("text", ["", "help"])
async def test_help_is_ephemeral_usage(bot: BotHarness, slack: FakeSlack, text: str) -> None:
    ack = await bot.command(text)
    assert ack.status == 200
    usage = await bot.ephemeral(ack, "/purview-check")
    assert "list" in usage and "runs" in usage
    await slack.settle()
    assert not slack.calls_to("chat.postMessage")


@pytest.mark.parametrize(
    ("text", "complaint"),
    [("sales-adls --bogus", "--bogus"), ("sales-adls contoso-pv extra words", "")],
)
async def test_bad_input_is_usage_and_what_was_wrong(
    bot: BotHarness, slack: FakeSlack, text: str, complaint: str
) -> None:
    ack = await bot.command(text)
    assert ack.status == 200
    answer = await bot.ephemeral(ack, "/purview-check")
    assert complaint in answer
    await slack.settle()
    assert not slack.calls_to("chat.postMessage")


async def test_unknown_source_suggests_names_and_posts_nothing(bot: BotHarness, slack: FakeSlack) -> None:
    ack = await bot.command("sales-adl")
    assert ack.status == 200
    answer = await bot.ephemeral(ack, "Did you mean")
    assert "No data source named" in plain(answer) and "sales-adl" in answer
    assert "sales-adls" in answer
    await slack.settle()
    assert not slack.calls_to("chat.postMessage")
    assert not slack.calls_to("chat.update")


async def test_list_and_runs_are_ephemeral(bot: BotHarness, slack: FakeSlack) -> None:
    listing = await bot.ephemeral(await bot.command("list sql"), "finance-sql")
    assert "hr-sql" in listing and "sales-adls" not in listing
    runs = await bot.ephemeral(await bot.command("runs sales-adls"), "weekly")
    assert "Failed" in runs or "failed" in runs
    await slack.settle()
    assert not slack.calls_to("chat.postMessage")


@pytest.fixture
async def gated_bot(start_bot: BotFactory) -> AsyncIterator[BotHarness]:
    async with start_bot(env={"PURVIEW_BOT_ALLOWED_CHANNELS": "C_ALLOWED"}) as harness:
        yield harness


async def test_disallowed_channel_is_refused_ephemerally(gated_bot: BotHarness, slack: FakeSlack) -> None:
    ack = await gated_bot.command("sales-adls", channel_id="C_OTHER")
    assert ack.status == 200
    await gated_bot.ephemeral(ack, "not enabled in this channel")
    await slack.settle()
    assert not slack.calls_to("chat.postMessage")
    assert not slack.calls_to("conversations.join")

    # the same command in the allowed channel is answered: the refusal is about the channel
    await gated_bot.command("sales-adls", channel_id="C_ALLOWED")
    await gated_bot.report("C_ALLOWED")
