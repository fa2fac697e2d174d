"""The Re-check button (and `recheck` in the thread): the parent says at once who asked, then becomes the
new verdict; the earlier findings are edited in place, not reposted; one reply says what changed."""

from __future__ import annotations

import time

from sandbox import Sandbox
from tests.slack import signing
from tests.slack.conftest import CHANNEL, BotFactory, BotHarness, plain
from tests.slack.fake_slack import FakeSlack
from tests.slack.test_admission import NO_RATES, ROLE_ASSIGNMENTS, command_as

# the requester's Entra user (Slack email → Graph): failing, reader-role is unknown, a toggleable problem
GRAPH_USERS = r"/graph/v1\.0/users"


async def test_recheck_edits_the_report_and_replies_with_what_changed(
    bot: BotHarness, slack: FakeSlack, sample_sandbox: Sandbox
) -> None:
    # first run: Graph fails, so reader-role could not be checked
    sample_sandbox.add_fault({"path": GRAPH_USERS, "status": 500})
    await bot.command("sales-adls")
    first = await bot.report(CHANNEL)
    summary = await slack.wait_for("chat.update", lambda c: c.args.get("ts") == first.thread_ts)
    assert "1 check could not run" in summary.text
    findings = [c.response["ts"] for c in first.thread]
    await slack.settle()

    # Azure recovers; the Re-check on the parent is clicked
    sample_sandbox.clear_faults()
    parent_button = summary.button("purview_rerun")
    assert parent_button is not None
    clicked = time.monotonic()
    ack = await bot.click(parent_button["value"], CHANNEL, first.thread_ts, first.thread_ts)
    assert ack.status == 200 and ack.elapsed < 1.0
    rechecking = await slack.wait_for(
        "chat.update", lambda c: c.at >= clicked and c.args.get("ts") == first.thread_ts
    )
    assert "Re-checking sales-adls in contoso-pv… requested by <@" in rechecking.text

    second = await bot.report(CHANNEL, first.thread_ts, after=clicked)
    await slack.settle()
    # one new reply: what changed, in words, with Re-check where the reader is
    assert len(second.thread) == 1, [c.text[:80] for c in second.thread]
    diff = plain(second.thread[0].text)
    assert "Re-checked by <@" in diff
    assert "Fixed: Data Platform On-call can read stsalesadls (reader-role)" in diff, diff
    assert "Still there: FAIL source-access, scan weekly" in diff
    # the earlier findings were edited in place, the parent became the new verdict
    edited = [c for c in slack.calls_to("chat.update", ok=True) if c.at >= clicked]
    assert {c.args["ts"] for c in edited} >= {first.thread_ts, *findings}
    verdict = (
        edited[-1]
        if edited[-1].args["ts"] == first.thread_ts
        else next(c for c in reversed(edited) if c.args["ts"] == first.thread_ts)
    )
    assert "FAIL" in verdict.text and "could not run" not in verdict.text
    refreshed = next(c for c in reversed(edited) if c.args["ts"] == findings[0])
    assert "source-access" in refreshed.text and "could not run" not in refreshed.text
    assert not [
        c for c in slack.calls_to("chat.postMessage") if c.at >= clicked and not c.args.get("thread_ts")
    ], "the re-check posted outside the thread"

    # and back: the fault returns; the next click (on the reply's button) calls it new
    sample_sandbox.add_fault({"path": GRAPH_USERS, "status": 500})
    clicked = time.monotonic()
    await bot.click(second.rerun_value, CHANNEL, second.last.response["ts"], first.thread_ts)
    third = await bot.report(CHANNEL, first.thread_ts, after=clicked)
    assert "New COULD NOT CHECK" in plain(third.thread[0].text) and "(reader-role)" in third.thread[0].text


async def test_recheck_with_nothing_changed_says_so_and_who_asked(bot: BotHarness, slack: FakeSlack) -> None:
    await bot.command("sales-adls")
    first = await bot.report(CHANNEL)
    await slack.settle()
    clicked = time.monotonic()
    await bot.click(first.rerun_value, CHANNEL, first.last.response["ts"], first.thread_ts)
    again = await bot.report(CHANNEL, first.thread_ts, after=clicked)
    text = plain(again.thread[0].text)
    assert "No change (checked by <@" in text and "FAIL source-access, scan weekly" in text
    # the old failed run is background: not "1 problem" of its own, not "still there"
    assert "scan-history" not in text


async def test_recheck_mention_in_the_bots_thread_reruns_that_source(
    bot: BotHarness, slack: FakeSlack, sample_sandbox: Sandbox
) -> None:
    sample_sandbox.add_fault({"path": GRAPH_USERS, "status": 500})
    await bot.command("sales-adls")
    first = await bot.report(CHANNEL)
    await slack.settle()
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
    assert "Fixed:" in again.thread_text and "(reader-role)" in again.thread_text


async def test_a_findings_message_slack_will_not_edit_is_said_not_reposted(
    bot: BotHarness, slack: FakeSlack
) -> None:
    await bot.command("sales-adls")
    first = await bot.report(CHANNEL)
    await slack.settle()
    findings = str(first.thread[0].response["ts"])
    slack.fail("chat.update", "cant_update_message", when=lambda args: args.get("ts") == findings)
    clicked = time.monotonic()
    await bot.click(first.rerun_value, CHANNEL, first.last.response["ts"], first.thread_ts)
    again = await bot.report(CHANNEL, first.thread_ts, after=clicked)
    await slack.settle()
    tries = [c for c in slack.calls_to("chat.update") if c.at >= clicked and c.args.get("ts") == findings]
    assert len(tries) == 2, "an edit is tried once more (chat.update is idempotent)"
    assert len(again.thread) == 1, "the findings were posted again: a second Re-check button"
    assert "1 of the 1 messages of this report could not be updated" in again.thread[0].text
    assert "cant_update_message" in again.thread[0].text


async def test_a_click_is_answered_before_its_turn_and_a_shutdown_while_queued_says_interrupted(
    start_bot: BotFactory, sample_sandbox: Sandbox, slack: FakeSlack
) -> None:
    """One diagnosis slot, held by a check that hangs on Azure: the Re-check click still turns its parent
    into "Re-checking… requested by" at once; a shutdown before its turn comes makes it "interrupted"
    (with Re-check), not "Re-checking…" forever."""
    env = {"PURVIEW_BOT_MAX_DIAGNOSES": "1", "PURVIEW_BOT_DRAIN_SECONDS": "0", **NO_RATES}
    async with start_bot(sandbox=sample_sandbox, env=env) as bot:
        await bot.command("sales-adls")
        first = await bot.report(CHANNEL)
        await slack.settle()
        sample_sandbox.add_fault({"path": ROLE_ASSIGNMENTS, "delayMs": 6_000})
        asked = time.monotonic()
        await command_as(bot, "healthy-blob", user="W_BUSY")  # takes the only slot, then hangs
        await slack.wait_for(
            "chat.postMessage", lambda c: c.at >= asked and "Checking healthy-blob" in c.text, timeout=10
        )
        clicked = time.monotonic()
        ack = await bot.click(first.rerun_value, CHANNEL, first.last.response["ts"], first.thread_ts)
        assert ack.status == 200
        rechecking = await slack.wait_for(
            "chat.update", lambda c: c.at >= clicked and c.args.get("ts") == first.thread_ts, timeout=5
        )
        assert "Re-checking sales-adls in contoso-pv… requested by <@" in rechecking.text
        assert time.monotonic() - clicked < 5, "the click waited for the slot"
    # stopped (no drain wait): the queued re-check was cut short and said so on the parent
    last = [c for c in slack.calls_to("chat.update", ok=True) if c.args.get("ts") == first.thread_ts][-1]
    assert "interrupted by a restart" in last.text, last.text
    assert "Re-checking" not in last.text
    assert last.button("purview_rerun") is not None


async def test_a_home_tab_recheck_cut_short_while_queued_does_not_stay_re_checking(
    start_bot: BotFactory, sample_sandbox: Sandbox, slack: FakeSlack
) -> None:
    """The Home tab says "re-checking…" at the click; a shutdown before the diagnosis's turn publishes the
    tab again without it."""
    env = {"PURVIEW_BOT_MAX_DIAGNOSES": "1", "PURVIEW_BOT_DRAIN_SECONDS": "0", **NO_RATES}
    async with start_bot(sandbox=sample_sandbox, env=env) as bot:
        await bot.command("sales-adls")  # its report is stored: the tab lists it
        await bot.report(CHANNEL)
        await slack.settle()
        sample_sandbox.add_fault({"path": ROLE_ASSIGNMENTS, "delayMs": 6_000})
        asked = time.monotonic()
        await command_as(bot, "healthy-blob", user="W_BUSY")  # takes the only slot, then hangs
        await slack.wait_for(
            "chat.postMessage", lambda c: c.at >= asked and "Checking healthy-blob" in c.text, timeout=10
        )
        clicked = time.monotonic()
        click = signing.block_action(
            '{"a":"contoso-pv","s":"sales-adls"}',
            "D0DANA",
            "1.2",
            None,
            bot.new_response_url("home"),
            action_id="purview_home_recheck",
            user_id="U0DANA",
        )
        assert (await bot.send(click)).status == 200
        pending = await slack.wait_for(
            "views.publish", lambda c: c.at >= clicked and c.args.get("user_id") == "U0DANA", timeout=5
        )
        assert "re-checking" in pending.text
    final = [c for c in slack.calls_to("views.publish", ok=True) if c.args.get("user_id") == "U0DANA"]
    assert len(final) == 2 and "re-checking" not in final[-1].text, [c.text[-200:] for c in final]
