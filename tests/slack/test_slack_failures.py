"""Slack misbehaving: 429 is retried (the message arrives once), 500s are logged and the bot stays up,
`not_in_channel` joins and retries, and when joining fails the report goes to the response_url.

Issue 9: a post Slack stored but answered 5xx (or never answered) is found in the history, not posted
twice (item 4); a failing update, a failing thread reply, a long Retry-After or an answer that is not JSON
still leave a whole report, and the private error text names no internal URL (item 7).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import pytest
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics
from bot.slack_client import web_client
from handlers.slack.posting import failure_text, finish_report, post_message, post_thread
from tests.slack.conftest import BOT_TOKEN, CHANNEL, BotHarness, SlackReport, plain
from tests.slack.fake_slack import FakeSlack
from tests.slack.test_slash_command import FIX, SALES_ADLS_FAILING


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
    deadline = time.monotonic() + 15
    while not [r for r in caplog.records if "chat.postMessage" in r.getMessage()]:
        assert time.monotonic() < deadline, "no log record names the failing Slack method"
        await asyncio.sleep(0.05)
    # a post is not retried blindly: the channel is searched for it, then it is posted again
    await slack.wait_for_count("chat.postMessage", 3, timeout=15)
    assert slack.calls_to("conversations.history")
    await bot.ephemeral(ack, "could not finish", within=15)
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
    answer = await bot.ephemeral(ack, FIX, within=15)  # the thread's findings, after the summary
    assert FIX in answer, "the findings (with their fix) did not reach the user"
    assert slack.calls_to("conversations.join")
    assert not slack.calls_to("chat.postMessage", ok=True)


# --- issue 9, item 4: a post Slack may have taken is looked for before it is posted again -------------


def _in_thread(args: dict[str, object]) -> bool:
    return bool(args.get("thread_ts"))


def _at_top(args: dict[str, object]) -> bool:
    return not args.get("thread_ts")


async def _report_in_stored_parent(bot: BotHarness, slack: FakeSlack) -> tuple[str, SlackReport]:
    """The report whose parent Slack stored (whatever it answered), once it has its Re-run button."""
    await slack.wait_for("chat.postMessage", lambda c: _at_top(c.args))
    deadline = time.monotonic() + 10
    while not slack.posted(CHANNEL):
        assert time.monotonic() < deadline, "no parent was stored"
        await asyncio.sleep(0.05)
    parent_ts = slack.posted(CHANNEL)[0].ts
    return parent_ts, await bot.report(CHANNEL, parent_ts)


def _assert_each_message_once(slack: FakeSlack, thread_ts: str) -> None:
    stored = Counter(m.text for m in slack.posted(CHANNEL, thread_ts))
    assert stored and max(stored.values()) == 1, f"a thread message was stored twice: {stored}"


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 503},
        {"status": 502, "body": "<html><body>502 Bad Gateway</body></html>"},
        {"drop": True},
    ],
    ids=["503", "502-html", "connection-dropped"],
)
async def test_a_parent_slack_stored_but_answered_5xx_is_posted_once(
    bot: BotHarness, slack: FakeSlack, failure: dict[str, Any]
) -> None:
    slack.fail("chat.postMessage", stored=True, times=1, when=_at_top, **failure)
    await bot.command("sales-adls")
    parent_ts, report = await _report_in_stored_parent(bot, slack)
    await slack.settle()

    assert len(slack.posted(CHANNEL)) == 1, "the parent was posted twice"
    assert next(c for c in slack.calls_to("chat.postMessage") if _at_top(c.args)).status != 200
    lookups = slack.calls_to("conversations.history", ok=True)
    assert lookups and str(lookups[0].args.get("include_all_metadata")).lower() in ("1", "true")
    update = await slack.wait_for("chat.update", lambda c: c.args.get("ts") == parent_ts)
    assert "Checking" not in update.text
    assert report.last.has_rerun_button
    _assert_each_message_once(slack, parent_ts)


async def test_thread_replies_slack_stored_but_answered_5xx_are_posted_once(
    bot: BotHarness, slack: FakeSlack
) -> None:
    # the update fails (so the summary goes into the thread too): two replies, both stored, both 503
    slack.fail("chat.update", error="cant_update_message", times=1)
    slack.fail("chat.postMessage", status=503, stored=True, times=2, when=_in_thread)
    await bot.command("sales-adls")
    await slack.wait_for_count("chat.postMessage", 2, lambda c: c.status == 503 and _in_thread(c.args))
    await slack.settle(quiet=2.0, timeout=20)

    [parent] = slack.posted(CHANNEL)
    replies = slack.posted(CHANNEL, parent.ts)
    assert len(replies) == 2, [m.text for m in replies]
    assert "could not be updated" in replies[0].as_json()["blocks"][-1]["elements"][0]["text"]
    assert any(b.get("type") == "actions" for b in replies[-1].blocks), "the findings are not in the thread"
    assert slack.calls_to("conversations.replies", ok=True), "the thread was not searched"
    _assert_each_message_once(slack, parent.ts)
    assert not [c for c in slack.calls_to("chat.postMessage") if "could not be posted" in c.text]


async def test_a_5xx_on_a_post_slack_did_not_store_posts_it_again_once(
    bot: BotHarness, slack: FakeSlack
) -> None:
    slack.fail("chat.postMessage", status=503, times=1, when=_at_top)
    await bot.command("sales-adls")
    report = await bot.report(CHANNEL)
    await slack.settle()

    tops = [c for c in slack.calls_to("chat.postMessage") if _at_top(c.args)]
    assert [c.status for c in tops] == [503, 200]
    assert len(slack.posted(CHANNEL)) == 1
    assert report.last.has_rerun_button


async def test_idempotent_reads_are_still_retried_on_5xx(bot: BotHarness, slack: FakeSlack) -> None:
    slack.fail("users.info", status=503, times=1)
    await bot.command("sales-adls")
    await bot.report(CHANNEL)
    assert [c.status for c in slack.calls_to("users.info")] == [503, 200]


# --- issue 9, item 7: Slack failing part-way through a report ------------------------------------------


async def test_a_failed_update_still_brings_summary_and_findings_into_the_thread(
    bot: BotHarness, slack: FakeSlack
) -> None:
    slack.fail("chat.update", error="cant_update_message")
    await bot.command("sales-adls")
    report = await bot.report(CHANNEL)
    await slack.settle()

    first = report.thread[0]
    assert "could not be updated" in first.text and "cant_update_message" in first.text
    for check in SALES_ADLS_FAILING:
        assert check in first.text, "the summary is not in the thread"
    assert FIX in report.thread_text, "the findings are not in the thread"
    assert len(slack.calls_to("chat.update")) >= 2, "the update was not tried again at the end"


async def test_a_long_retry_after_is_not_waited_for_and_the_report_arrives(
    bot: BotHarness, slack: FakeSlack
) -> None:
    slack.fail("chat.update", status=429, retry_after=40, times=1)
    ack = await bot.command("sales-adls")
    report = await bot.report(CHANNEL)  # bounded: waiting out Retry-After: 40 would miss this
    assert "rate-limiting" in report.thread[0].text and "40 s" in report.thread[0].text
    # the update is tried once more at the end, and Slack takes it then: no "Checking…" left
    update = await slack.wait_for("chat.update", lambda c: c.ok)
    assert update.args["ts"] == report.thread_ts and "Checking" not in update.text
    assert len(slack.calls_to("chat.update")) == 2
    assert "could not finish" not in plain(bot.ephemeral_text(ack))


async def test_one_failed_thread_post_does_not_drop_the_others(bot: BotHarness, slack: FakeSlack) -> None:
    # the update fails, so the thread gets two messages (the summary, the findings); the first fails too
    slack.fail("chat.update", error="cant_update_message", times=1)
    slack.fail("chat.postMessage", error="invalid_blocks", times=1, when=_in_thread)
    await bot.command("sales-adls")
    report = await bot.report(CHANNEL)
    note = await slack.wait_for(
        "chat.postMessage", lambda c: c.ok and "could not be posted" in c.text and _in_thread(c.args)
    )
    assert note.args["thread_ts"] == report.thread_ts
    assert "invalid_blocks" in note.text and "1 of the 2 messages" in note.text
    failed = [c for c in slack.calls_to("chat.postMessage") if not c.ok]
    assert len(failed) == 1 and failed[0].at < report.last.at, "the message after the failed one was dropped"
    assert FIX in report.thread_text


def _client(slack: FakeSlack) -> AsyncWebClient:
    return web_client(token=BOT_TOKEN, base_url=slack.url, counter=Metrics())


def _message(text: str) -> dict[str, Any]:
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


async def test_each_thread_post_is_independent(slack: FakeSlack) -> None:
    client = _client(slack)
    parent = await post_message(client, channel=CHANNEL, text="parent")
    slack.fail("chat.postMessage", error="msg_too_long", when=lambda a: a.get("text") == "two")
    messages = [_message(t) for t in ("one", "two", "three")]
    failures = await post_thread(client, channel=CHANNEL, thread_ts=parent, messages=messages)
    assert [(i, failure_text(e)) for i, e in failures] == [(1, "Slack answered `msg_too_long`")]
    assert [m.text for m in slack.posted(CHANNEL, parent)] == ["one", "three"]


async def test_a_report_the_channel_takes_nothing_of_goes_to_the_asker_privately(slack: FakeSlack) -> None:
    client = _client(slack)
    parent = await post_message(client, channel=CHANNEL, text="Checking sales-adls…")
    slack.fail("chat.update", status=429, retry_after=40)
    slack.fail("chat.postMessage", status=429, retry_after=40)
    respond = AsyncRespond(response_url=slack.response_url("asker"))
    summary, thread = (
        _message("✖ sales-adls: 2 problems"),
        [_message("Findings: source-access"), _message("More")],
    )
    await finish_report(
        client,
        channel=CHANNEL,
        summary_ts=parent,
        thread_ts=parent,
        summary=summary,
        thread=thread,
        respond=respond,
    )
    private = [c.text for c in slack.calls_to("response_url") if c.response_id == "asker"]
    assert len(private) == 3, private
    assert "Slack did not take this report in the channel" in private[0]
    assert "rate-limiting the bot (it asked to wait 40 s)" in private[0]
    assert "2 problems" in private[0] and "source-access" in private[1] and "More" in private[2]
    assert all(str(urlsplit(slack.url).port) not in t and "127.0.0.1" not in t for t in private)
    assert not slack.posted(CHANNEL, parent)


async def test_a_note_the_thread_does_not_take_goes_to_the_asker_privately(slack: FakeSlack) -> None:
    client = _client(slack)
    parent = await post_message(client, channel=CHANNEL, text="Checking sales-adls…")
    slack.fail("chat.postMessage", error="msg_blocks_too_long", when=lambda a: a.get("text") == "Findings")
    slack.fail("chat.postMessage", status=503, when=lambda a: "could not be posted" in str(a.get("text")))
    respond = AsyncRespond(response_url=slack.response_url("asker"))
    thread = [_message("Findings"), _message("Re-run")]
    await finish_report(
        client,
        channel=CHANNEL,
        summary_ts=parent,
        thread_ts=parent,
        summary=_message("✖"),
        thread=thread,
        respond=respond,
    )
    assert [m.text for m in slack.posted(CHANNEL, parent)] == ["Re-run"]
    [private] = [c.text for c in slack.calls_to("response_url") if c.response_id == "asker"]
    assert "1 of the 2 messages of this report could not be posted" in private
    assert "msg_blocks_too_long" in private


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 405, "body": "<html><head><title>405 Not Allowed</title></head></html>"},
        {"status": 502, "body": "<html>Bad Gateway</html>", "content_type": "application/json"},
        {"status": 502, "body": "upstream connect error", "content_type": "text/plain"},
        {"status": 200, "body": "ok", "content_type": "text/plain"},
    ],
    ids=["html-405", "json-typed-html-502", "text-502", "text-200"],
)
async def test_a_users_info_answer_that_is_not_json_does_not_sink_the_report(
    bot: BotHarness, slack: FakeSlack, caplog: pytest.LogCaptureFixture, answer: dict[str, Any]
) -> None:
    caplog.set_level(logging.WARNING)
    slack.fail("users.info", **answer)
    ack = await bot.command("sales-adls")
    report = await bot.report(CHANNEL)
    await slack.settle()

    update = await slack.wait_for("chat.update", lambda c: c.args.get("ts") == report.thread_ts)
    assert "could not finish" not in plain(update.text)
    for check in SALES_ADLS_FAILING:
        assert check in update.text
    assert "could not finish" not in plain(bot.ephemeral_text(ack))
    assert not [r for r in caplog.records if r.exc_info and r.exc_info[0] is AttributeError]
    assert any(
        f"http_{answer['status']}" in r.getMessage() for r in caplog.records if "users.info" in r.getMessage()
    )


async def test_the_private_error_text_names_no_internal_url_host_or_port(
    bot: BotHarness, slack: FakeSlack
) -> None:
    slack.fail("chat.postMessage", status=500)
    ack = await bot.command("sales-adls")
    text = await bot.ephemeral(ack, "could not finish", within=15)
    port = str(urlsplit(slack.url).port)
    for leak in ("127.0.0.1", port, "http://", "/api/"):
        assert leak not in text, f"{leak!r} in the private answer: {text!r}"
    assert "chat.postMessage" in text


async def test_a_refused_connection_fails_as_slack_did_not_answer(unused_tcp_port: int) -> None:
    client = web_client(
        token="xoxb-1", base_url=f"http://127.0.0.1:{unused_tcp_port}/api/", counter=Metrics()
    )
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel=CHANNEL, text="hello")
    assert raised.value.response["error"] == "slack_unreachable"
    assert failure_text(raised.value) == "Slack did not answer"
    assert "127.0.0.1" not in str(raised.value) and str(unused_tcp_port) not in str(raised.value)
