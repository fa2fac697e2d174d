"""Bounded work, per-user and per-channel rates, shared diagnoses, and a deadline that starts with the
diagnosis (issue 9, item 5): through real signed HTTP against the bot over the sandbox."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from handlers import diagnosis
from handlers.slack.admission import BUSY, Admission, Refused, Ticket, TokenBuckets
from sandbox import Sandbox
from tests.slack import signing
from tests.slack.conftest import CHANNEL, Ack, BotFactory, BotHarness, plain
from tests.slack.fake_slack import Call, FakeSlack

ROLE_ASSIGNMENTS = r"/providers/Microsoft\.Authorization/roleAssignments"
NO_RATES = {"PURVIEW_BOT_USER_RATE": "0", "PURVIEW_BOT_CHANNEL_RATE": "0"}
SOURCES = [
    "sales-adls",
    "finance-sql",
    "archive-blob",
    "hr-sql",
    "lake-private",
    "marketing-adls",
    "healthy-blob",
]


async def command_as(bot: BotHarness, text: str, *, user: str, channel: str = CHANNEL) -> Ack:
    """`/purview-check TEXT` typed by `user` in `channel`."""
    url = bot.new_response_url("cmd")
    ack = await bot.send(signing.slash_command(text, channel_id=channel, user_id=user, response_url=url))
    ack.response_url, ack.response_id = url, url.rsplit("/", 1)[-1]
    return ack


def ack_text(ack: Ack) -> str:
    return plain(str(ack.json.get("text") if ack.json else ack.text))


def parents(slack: FakeSlack, channel: str = CHANNEL) -> list[Call]:
    return [
        c
        for c in slack.calls_to("chat.postMessage", ok=True)
        if c.args.get("channel") == channel and not c.args.get("thread_ts")
    ]


async def metric(bot: BotHarness, pattern: str) -> float:
    async with bot.session.get(f"{bot.url}/metrics") as resp:
        text = await resp.text()
    found = re.search(pattern + r"\s+([0-9.e+]+)", text)
    return float(found.group(1)) if found else 0.0


async def test_a_burst_past_the_queue_is_told_busy_in_the_ack_and_posts_nothing(
    start_bot: BotFactory, sample_sandbox: Sandbox, slack: FakeSlack
) -> None:
    # one diagnosis at a time, two more may wait: three commands are taken, the rest are turned away
    env = {"PURVIEW_BOT_MAX_DIAGNOSES": "1", "PURVIEW_BOT_MAX_QUEUED": "2", **NO_RATES}
    sample_sandbox.add_fault({"path": ROLE_ASSIGNMENTS, "delayMs": 400})
    async with start_bot(sandbox=sample_sandbox, env=env) as bot:
        acks = await asyncio.gather(
            *(command_as(bot, SOURCES[i % len(SOURCES)], user=f"W{i:03d}") for i in range(12))
        )
        assert all(a.status == 200 for a in acks)
        taken = [a for a in acks if "Checking" in ack_text(a)]
        busy = [a for a in acks if ack_text(a) == BUSY]
        assert (len(taken), len(busy)) == (3, 9), [ack_text(a) for a in acks]

        assert all(a.json["response_type"] == "ephemeral" for a in busy)
        await slack.wait_for_count("chat.postMessage", 3, lambda c: c.has_rerun_button, timeout=30)
        await slack.settle()
        assert len(parents(slack)) == 3, "a turned-away command posted in the channel"
        assert not [c for c in slack.calls_to("chat.postMessage") if "busy" in c.text]
        # the turned-away commands looked nothing up: no users.info, no name lookup in Purview
        assert len(slack.calls_to("users.info")) == 3
        assert await metric(bot, r'purview_bot_requests_refused_total\{reason="busy"\}') == 9

        # the work done, its places are free again
        asked = time.monotonic()
        again = await command_as(bot, "healthy-blob", user="W999")
        assert "Checking" in ack_text(again)
        await bot.report(CHANNEL, after=asked)


async def test_one_user_is_limited_per_minute_and_others_are_not(
    start_bot: BotFactory, sample_sandbox: Sandbox, slack: FakeSlack
) -> None:
    env = {"PURVIEW_BOT_USER_RATE": "2", "PURVIEW_BOT_CHANNEL_RATE": "0"}
    async with start_bot(sandbox=sample_sandbox, env=env) as bot:
        first = await command_as(bot, "list", user="W1")
        second = await command_as(bot, "runs sales-adls", user="W1")
        third = await command_as(bot, "sales-adls", user="W1")
        assert "Listing" in ack_text(first) and "Reading" in ack_text(second)
        said = ack_text(third)
        assert "faster than it allows one person (2 a minute)" in said and "try again in" in said, said
        other = await command_as(bot, "healthy-blob", user="W2")  # someone else is not held back
        assert "Checking" in ack_text(other)
        help_ = await command_as(bot, "help", user="W1")  # answered in the ack: not limited
        assert "/purview-check" in ack_text(help_)

        # a mention over the limit is told privately; nothing in the thread
        ts = f"{int(time.time())}.000800"
        await bot.send(signing.app_mention("check sales-adls", CHANNEL, ts, user="W1"))
        told = await slack.wait_for("chat.postEphemeral", lambda c: c.args.get("user") == "W1")
        assert "try again in" in plain(told.text) and told.args.get("thread_ts") == ts
        await bot.report(CHANNEL)  # W2's
        await slack.settle()
        assert len(parents(slack)) == 1
        assert not slack.thread(CHANNEL, ts), "the refused mention posted in its thread"
        assert await metric(bot, r'purview_bot_requests_refused_total\{reason="user_rate"\}') == 2


async def test_one_channel_is_limited_per_minute(
    start_bot: BotFactory, sample_sandbox: Sandbox, slack: FakeSlack
) -> None:
    env = {"PURVIEW_BOT_USER_RATE": "0", "PURVIEW_BOT_CHANNEL_RATE": "2"}
    async with start_bot(sandbox=sample_sandbox, env=env) as bot:
        assert "Listing" in ack_text(await command_as(bot, "list", user="W1"))
        assert "Listing" in ack_text(await command_as(bot, "list", user="W2"))
        said = ack_text(await command_as(bot, "list", user="W3"))
        assert "answering this channel as fast as it allows (2 a minute)" in said, said
        assert "Listing" in ack_text(await command_as(bot, "list", user="W3", channel="C222"))
        await slack.settle()
        assert not slack.calls_to("chat.postMessage")


async def test_a_refused_rerun_click_is_told_privately(
    start_bot: BotFactory, sample_sandbox: Sandbox, slack: FakeSlack
) -> None:
    async with start_bot(sandbox=sample_sandbox, env={"PURVIEW_BOT_USER_RATE": "1"}) as bot:
        await bot.command("healthy-blob")
        report = await bot.report(CHANNEL)
        clicked = time.monotonic()
        ack = await bot.click(report.rerun_value, CHANNEL, report.last.response["ts"], report.thread_ts)
        assert ack.status == 200
        assert "try again in" in await bot.ephemeral(ack, "try again")
        await slack.settle()
        assert not [c for c in slack.calls_to("chat.postMessage") if c.at >= clicked]


async def test_identical_checks_in_flight_share_one_diagnosis_and_each_asker_gets_the_report(
    start_bot: BotFactory, sample_sandbox: Sandbox, slack: FakeSlack
) -> None:
    """Two people (the same requester to Entra: the checks' inputs are identical) ask for sales-adls at
    the same time, one with the slash command in C111, one mentioning the bot in a C222 thread; a third
    person, another Entra user, asks too: theirs is a diagnosis of its own (reader-role looks at them)."""
    slack.user_emails["W_OTHER"] = "someone.else@contoso.com"
    sample_sandbox.add_fault({"path": ROLE_ASSIGNMENTS, "delayMs": 1500, "times": 2})  # the first one's
    async with start_bot(sandbox=sample_sandbox) as bot:
        sample_sandbox.clear_requests()
        await command_as(bot, "sales-adls", user="W1")
        await slack.wait_for("users.info")  # the first diagnosis is under way
        ts = f"{int(time.time())}.000900"
        await bot.send(signing.app_mention("check sales-adls", "C222", ts, user="W2"))
        first = await bot.report(CHANNEL)
        second = await bot.report("C222", ts)
        await slack.settle()

        scan_lists = [r for r in sample_sandbox.requests if r.path.endswith("/datasources/sales-adls/scans")]
        assert len(scan_lists) == 1, "two askers, two diagnoses"
        graph = [r for r in sample_sandbox.requests if r.path.startswith("/graph/")]
        assert len(graph) == 1
        for report in (first, second):
            assert "source-access" in report.thread_text
        assert first.rerun_value == second.rerun_value  # the same report, answered to each
        assert await metric(bot, r"purview_bot_diagnoses_shared_total") == 1

        # another requester's check is its own diagnosis
        asked = time.monotonic()
        await command_as(bot, "sales-adls", user="W_OTHER")
        await bot.report(CHANNEL, after=asked)
        scan_lists = [r for r in sample_sandbox.requests if r.path.endswith("/datasources/sales-adls/scans")]
        assert len(scan_lists) == 2


async def test_a_queued_diagnosis_is_not_cut_short_by_its_wait(
    start_bot: BotFactory, sample_sandbox: Sandbox, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One diagnosis at a time, each taking its whole 1 s deadline (a hanging Azure call); the hard stop
    is deadline + grace = 2 s. The fourth command waits ~3 s for its turn: a deadline counted from the
    command (the old behaviour) ends it "could not finish" before it starts."""
    monkeypatch.setattr(diagnosis, "GRACE_SECONDS", 1.0)
    sample_sandbox.add_fault({"path": ROLE_ASSIGNMENTS, "delayMs": 3000})
    env = {"PURVIEW_BOT_MAX_DIAGNOSES": "1", "PURVIEW_BOT_DEADLINE": "1", **NO_RATES}
    async with start_bot(sandbox=sample_sandbox, env=env) as bot:
        names = ["sales-adls", "archive-blob", "marketing-adls", "healthy-blob"]
        for name in names:
            await command_as(bot, name, user=f"W_{name}")
        summaries = await slack.wait_for_count(
            "chat.update", len(names), lambda c: "Checking" not in c.text, timeout=30
        )
        finished = {c.text for c in summaries}
        assert not [t for t in finished if "could not finish" in t], finished
        for name in names:
            assert any(name in t for t in finished), (name, finished)


# the pieces ------------------------------------------------------------------------------------------


class Counted:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def refused(self, reason: str) -> None:
        self.reasons.append(reason)


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(6, clock=lambda: now[0])  # 6 a minute: one every 10 s
    for _ in range(6):
        assert buckets.wait("W1") == 0
        buckets.take("W1")
    assert buckets.wait("W1") == pytest.approx(10.0)
    now[0] = 5.0
    assert buckets.wait("W1") == pytest.approx(5.0)
    now[0] = 10.0
    assert buckets.wait("W1") == 0
    assert TokenBuckets(0).wait("anyone") == 0  # off


def test_token_buckets_are_bounded() -> None:
    now = [0.0]
    buckets = TokenBuckets(60, clock=lambda: now[0], max_keys=100)
    for i in range(1000):
        buckets.take(f"W{i}")
        now[0] += 0.001
    assert len(buckets) <= 100


def test_admission_releases_and_counts() -> None:
    metrics = Counted()
    admission = Admission(max_in_progress=2, user_per_minute=0, channel_per_minute=0, metrics=metrics)
    first, second = admission.admit("W1", "C1"), admission.admit("W2", "C1")
    assert isinstance(first, Ticket) and isinstance(second, Ticket)
    refused = admission.admit("W3", "C1")
    assert isinstance(refused, Refused) and refused.text == BUSY
    first.release()
    first.release()  # idempotent
    assert admission.in_progress == 1
    assert isinstance(admission.admit("W3", "C1"), Ticket)
    assert metrics.reasons == ["busy"]
