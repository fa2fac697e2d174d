"""Every sample source through the bot and the fake Slack: the first screen is verdict, cause and fix;
the thread is quiet and valid Block Kit; Show evidence opens a modal from the stored report."""

from __future__ import annotations

import re
import time

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from sandbox import load_world
from tests.render.reports import texts
from tests.slack.conftest import CHANNEL, BotFactory, BotHarness
from tests.slack.fake_slack import Call, FakeSlack

WORDS = ("✖ FAIL: ", "▲ WARN: ", "? COULD NOT CHECK: ", "✔ PASS: ")
NO_LIMITS = {"PURVIEW_BOT_USER_RATE": "1000", "PURVIEW_BOT_CHANNEL_RATE": "1000"}
LINK = re.compile(r"<(https://[^|<>]+|!date\^[^|<>]+)\|([^<>]*)>")
FENCE = re.compile(r"```\n(.*?)\n```", re.S)


def sample_sources() -> list[tuple[str, str]]:
    """(source, account) of every data source of the sample tenant."""
    world = load_world(None)
    return [(str(ds["name"]), name) for name, pv in world.purview.items() for ds in pv.data_sources]


def assert_valid_block_kit(call: Call) -> None:
    blocks = call.args.get("blocks") or []
    assert 0 < len(blocks) <= 50
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None and parsed.to_dict() == block, block
        for obj in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
            if isinstance(obj, dict) and obj.get("type") == "mrkdwn":
                assert not obj.get("verbatim"), "verbatim mrkdwn: Azure's URLs would not link"


def readable(text: str) -> str:
    """The text as a reader sees it: links as their labels, code blocks removed."""
    return LINK.sub(r"\2", FENCE.sub("", text))


async def test_every_sample_source_leads_with_verdict_cause_and_fix(
    start_bot: BotFactory, slack: FakeSlack
) -> None:
    sources = sample_sources()
    assert len(sources) >= 28
    async with start_bot(env=NO_LIMITS) as bot:
        for name, account in sources:
            asked = time.monotonic()
            await bot.command(f"{name} {account}")
            report = await bot.report(CHANNEL, after=asked)
            summary = await slack.wait_for(
                "chat.update",
                lambda c, ts=report.thread_ts: c.args.get("ts") == ts and "Checking" not in c.text,  # type: ignore[misc]
            )
            check_first_screen(name, summary)
            check_thread(name, report.thread)


def check_first_screen(name: str, summary: Call) -> None:
    assert_valid_block_kit(summary)
    blocks = summary.args["blocks"]
    header = blocks[0]["text"]["text"]
    assert header.startswith(WORDS) and f" {name} (" in header, header
    word = header.split(":")[0][2:]
    fallback = summary.args["text"]
    assert fallback.startswith(f"{word} {name} ("), fallback
    verdict = blocks[1]["text"]["text"]
    if word in ("FAIL", "WARN"):
        cause = verdict.splitlines()[0].strip("*")
        assert cause and cause.split(": ", 1)[-1][:40] in fallback, (verdict, fallback)  # the push says why
        assert "*Fix:*" in verdict or "No check finds a cause now" in verdict, verdict
    buttons = [e["text"]["text"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["Re-check", "Open in Purview", "Guide"], buttons
    whole = "\n".join(texts(blocks))
    assert "scan-history" not in whole, "the scan's runs are background, not a problem"
    assert "run(s)" not in whole and not re.search(r"\d\d:\d\d:\d\d\.\d{7}", whole)


def check_thread(name: str, thread: list[Call]) -> None:
    text = ""
    for call in thread:
        assert_valid_block_kit(call)
        text += "\n".join(texts(call.args.get("blocks") or [])) + "\n"
    ours = "\n".join(line for line in readable(text).splitlines() if not line.startswith("Error: "))
    assert "run(s)" not in text and not re.search(r"\d\d:\d\d:\d\d\.\d{7}", ours), (name, ours)
    for fenced in FENCE.findall(text):
        assert not any(line.lstrip().startswith("#") for line in fenced.splitlines()), fenced
        assert "--query value" not in fenced, "a fix that prints a secret's value"
    # no ARM-id floods: resource ids are links named after the resource
    ids = re.findall(r"/subscriptions/[0-9a-fA-F-]{36}\S*", ours)
    assert not ids, (name, ids)
    # each scan's error text once
    for error in re.findall(r"Error: (.{60})", readable(text)):
        assert readable(text).count(error) == 1, (name, error)


async def test_show_evidence_opens_a_modal_from_the_stored_report(bot: BotHarness, slack: FakeSlack) -> None:
    await bot.command("sales-adls")
    report = await bot.report(CHANNEL)
    await slack.settle()
    evidence = next(c for c in report.thread if c.button("purview_evidence") is not None)
    button = evidence.button("purview_evidence")
    assert button is not None
    clicked = time.monotonic()
    ack = await bot.click(
        button["value"], CHANNEL, evidence.response["ts"], report.thread_ts, action_id="purview_evidence"
    )
    assert ack.status == 200 and ack.elapsed < 1.0
    opened = await slack.wait_for("views.open", lambda c: c.at >= clicked)
    assert opened.ok and opened.args["trigger_id"] == "111.222.valid"
    view = opened.args["view"]
    view = view if isinstance(view, dict) else __import__("json").loads(view)
    assert View(**view).to_dict() == view
    body = "\n".join(texts(view["blocks"]))
    assert "source-access" in body and '"action": "Microsoft.Storage/storageAccounts' in body
    # the URL buttons of the summary are acked too (Slack sends their clicks)
    for action in ("purview_open_purview", "purview_open_guide"):
        ack = await bot.click("", CHANNEL, report.thread_ts, None, action_id=action)
        assert ack.status == 200


async def test_a_hostile_evidence_button_is_refused_privately(bot: BotHarness, slack: FakeSlack) -> None:
    await bot.command("sales-adls")
    report = await bot.report(CHANNEL)
    ack = await bot.click(
        '{"v":1,"a":"<!channel>"}', CHANNEL, report.thread_ts, None, action_id="purview_evidence"
    )
    assert "not one purview-bot can read" in await bot.ephemeral(ack, "purview-bot")
