"""Names and error texts from Azure, and what users type, are shown literally: nobody is pinged, no link
is forged, no text turns bold, italic, struck, code or reversed (issue 9, item 13). The world is the
sample tenant with hostile names; every string the bot sends is checked."""

from __future__ import annotations

import copy
import re
import time
from importlib import resources
from typing import Any

import yaml

from sandbox import World, load_world
from tests.render.test_escape import formatting_leaks
from tests.slack import signing
from tests.slack.conftest import CHANNEL, BotFactory, BotHarness
from tests.slack.fake_slack import NOT_RENDERED, FakeSlack, iter_strings

EVIL = "<!channel> <@U1> <https://evil|click> & co"
EVIL_SOURCE = "evil<!channel>&<@U1>"
EVIL_SCAN = "weekly<!here>&"
FORBIDDEN = ("<!channel>", "<!here>", "<@U1>", "<https://evil")
BARE_AMPERSAND = re.compile(r"&(?!amp;|lt;|gt;)")
# mrkdwn formatting and bidirectional controls; names cannot hold a newline, error texts can (a quote)
FORMAT = "*bold*_it_~gone~`tick`\u202eevil\u202c"
FORMAT_ERROR = f"x {FORMAT} \u2066iso\u2069 \u200fmark\n> quote"
FORMAT_SOURCE = f"fmt{FORMAT}"
FORMAT_SCAN = f"weekly{FORMAT}"


def hostile_world(
    evil: str = EVIL, source: str = EVIL_SOURCE, scan_name: str = EVIL_SCAN, name_tail: str = "<!channel>&"
) -> World:
    text = (resources.files("sandbox") / "worlds" / "sample.yaml").read_text(encoding="utf-8")
    raw: dict[str, Any] = yaml.safe_load(text)
    account = raw["purview"]["contoso-pv"]
    sources = account["dataSources"]
    sales = next(s for s in sources if s["name"] == "sales-adls")
    sales["properties"]["collection"]["referenceName"] = f"sales{name_tail}"
    # a second source whose very name is hostile (seen by `list` and did-you-mean)
    hostile = copy.deepcopy(sales)
    hostile["name"], hostile["id"] = source, f"datasources/{source}"
    sources.append(hostile)
    # the scan's name, and the error texts of its runs
    scan = account["scans"]["sales-adls"][0]
    scan["name"], scan["id"] = scan_name, f"datasources/sales-adls/scans/{scan_name}"
    runs = account["runs"].pop("sales-adls/weekly")
    for run in runs:
        if run.get("errorMessage"):  # at the start: long error texts are cut short when shown
            run["errorMessage"] = f"{evil} {run['errorMessage']}"
        if isinstance(run.get("error"), dict):
            run["error"]["message"] = f"{evil} {run['error']['message']}"
    account["runs"][f"sales-adls/{scan_name}"] = runs
    # the storage account's name as ARM shows it, and a tag
    for resource in raw["resources"]:
        if resource["id"].endswith("/storageAccounts/stsalesadls"):
            resource["name"] = "stsalesadls<https://evil|click>" if evil == EVIL else f"stsalesadls{FORMAT}"
            resource.setdefault("tags", {})["owner"] = evil
    return load_world(raw)


def offending(text: str) -> list[str]:
    found = [f for f in FORBIDDEN if f in text]
    found += [
        f"bare & at {m.start()}: …{text[max(0, m.start() - 20) : m.start() + 20]}…"
        for m in BARE_AMPERSAND.finditer(text)
    ]
    return found


async def test_hostile_names_and_errors_ping_nobody(start_bot: BotFactory, slack: FakeSlack) -> None:
    async with start_bot(world=hostile_world()) as bot:
        await exercise(bot, slack)
        await slack.settle()

    sent = [(c.method, s) for c in slack.calls for s in iter_strings(c.args, skip=NOT_RENDERED)]
    sent += [
        ("ack", s) for a in bot.acks if a.json is not None for s in iter_strings(a.json, skip=NOT_RENDERED)
    ]
    sent += [("ack", a.text) for a in bot.acks if a.json is None]
    problems = [(method, f, s[:200]) for method, s in sent for f in offending(s)]
    assert not problems, "\n".join(map(str, problems))

    everything = "\n".join(s for _, s in sent)
    # the hostile text did reach Slack, escaped: the test exercised what it claims to
    assert "&lt;!channel&gt;" in everything
    assert "&lt;@U1&gt;" in everything
    assert "&lt;https://evil|click&gt;" in everything
    assert "&amp;" in everything


async def exercise(bot: BotHarness, slack: FakeSlack) -> None:
    """Every path that shows Azure's or a user's text: report, list, runs, did-you-mean, mention, usage."""
    started = time.monotonic()
    await bot.command("sales-adls")
    report = await bot.report(CHANNEL, after=started)
    assert "weekly&lt;!here&gt;&amp;" in report.thread_text

    await bot.ephemeral(await bot.command("list"), "evil&lt;!channel&gt;")
    await bot.ephemeral(await bot.command("runs sales-adls"), "Succeeded")
    await bot.ephemeral(await bot.command("<!channel>&<@U1>"), "Did you mean")
    await bot.command("sales-adls --scan <@U1>&")  # an unknown scan, named by the user

    clicked = time.monotonic()
    await bot.click(report.rerun_value, CHANNEL, report.last.response["ts"], report.thread_ts)
    await bot.report(CHANNEL, report.thread_ts, after=clicked)

    ts = f"{int(time.time())}.000700"
    await bot.send(signing.app_mention("hello <!channel> <https://evil|click> &", CHANNEL, ts))
    await slack.wait_for("chat.postMessage", lambda c: c.args.get("thread_ts") == ts)
    ts2 = f"{int(time.time())}.000800"  # as typed (Slack would send it entity-escaped): a did-you-mean
    await bot.send(signing.app_mention(f"check {EVIL_SOURCE}", CHANNEL, ts2))
    await slack.wait_for("chat.postMessage", lambda c: c.args.get("thread_ts") == ts2)


async def test_hostile_formatting_and_direction_characters_render_literally(
    start_bot: BotFactory, slack: FakeSlack
) -> None:
    world = hostile_world(FORMAT_ERROR, FORMAT_SOURCE, FORMAT_SCAN, FORMAT)
    async with start_bot(world=world) as bot:
        started = time.monotonic()
        await bot.command("sales-adls")
        report = await bot.report(CHANNEL, after=started)
        await bot.ephemeral(await bot.command("list"), "fmt")
        await bot.ephemeral(await bot.command("runs sales-adls"), "Succeeded")
        await bot.ephemeral(await bot.command("fmt*bold*"), "Did you mean")
        await bot.command("sales-adls --scan *bold*_it_")  # an unknown scan, named by the user
        clicked = time.monotonic()
        await bot.click(report.rerun_value, CHANNEL, report.last.response["ts"], report.thread_ts)
        await bot.report(CHANNEL, report.thread_ts, after=clicked)
        ts = f"{int(time.time())}.000900"
        await bot.send(signing.app_mention("hello *bold* _it_ ~gone~ \u202eevil", CHANNEL, ts))
        await slack.wait_for("chat.postMessage", lambda c: c.args.get("thread_ts") == ts)
        await slack.settle()

    sent = [(c.method, s) for c in slack.calls for s in iter_strings(c.args, skip=NOT_RENDERED)]
    sent += [
        ("ack", s) for a in bot.acks if a.json is not None for s in iter_strings(a.json, skip=NOT_RENDERED)
    ]
    sent += [("ack", a.text) for a in bot.acks if a.json is None]
    problems = [(method, leak, s[:200]) for method, s in sent for leak in formatting_leaks(s)]
    assert not problems, "\n".join(map(str, problems))

    everything = "\n".join(s for _, s in sent)
    # the hostile text did reach Slack, neutralised: the test exercised what it claims to
    assert "\u2217bold\u2217\u02cdit\u02cd\u223cgone\u223c\u02cbtick\u02cb[U+202E]evil[U+202C]" in everything
    assert "`fmt*bold*_it_~gone~\u02cbtick\u02cb[U+202E]evil[U+202C]`" in everything  # in code, as typed
    assert "\u203a quote" in everything
