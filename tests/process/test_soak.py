"""Soak (issue 9): `purview-bot serve` in its own process takes 2,000 mixed signed requests over HTTP while
the fake Slack answers about 5 % of `chat.postMessage` / `chat.update` calls with a 5xx (half of them
after taking the call: the message is stored, the answer lost).

Sent, ~50 in flight, each with its own channel, user, trigger id and response_url:
- slash commands: checks of `sales-adls` and `healthy-blob` (each posts one "Checking…" parent that
  becomes the summary, the findings in its thread), `help`, `list`, a usage error, an unknown name;
- replays: a signed check delivered twice, the same bytes;
- `app_mention` checks delivered three times, as Slack retries (`X-Slack-Retry-Num` 1 and 2);
- Re-run clicks on the threads of the warm-up's reports.

Then: every request acked 200; one parent per check (replays and retries add none), no post stored
twice (parents and replies counted by the `post_id` in their metadata), one report per mention and per
click, nothing posted for the ephemeral commands, no message still reading "Checking…", and the bot's
RSS flat: the last sample within 1.3x of the one after the warm-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from sandbox import Sandbox, load_world
from tests.bot.serve_process import SECRET, ServeProcess, serve_env, serving
from tests.process.soak_helpers import (
    FlakySlack,
    Sent,
    click,
    deliver,
    has_rerun_button,
    is_report_parent,
    now_ts,
    post_id,
    rerun_value,
    rss_kib,
    slash,
)
from tests.slack import signing
from tests.slack.fake_slack import BOT_ID, FakeSlack, Message

IN_FLIGHT = 50
BUDGET = 90.0  # seconds for the whole soak, start-up included
WARM_CHECKS = 60
WARM_OTHERS = 10  # of each ephemeral kind
# the main phase (2,000 requests in all with the warm-up's 100)
CHECKS = 840
REPLAYS = 150  # 2 requests each
EPHEMERAL = 90  # of each of 4 kinds
MENTIONS = 100  # 3 deliveries each
CLICKS = 100
TOTAL = WARM_CHECKS + 4 * WARM_OTHERS + CHECKS + 2 * REPLAYS + 4 * EPHEMERAL + 3 * MENTIONS + CLICKS
RSS_GROWTH = 1.3  # the last sample against the one after the warm-up (measured: ~1.2, the queue's peak)

EPHEMERAL_TEXTS = {
    "help": "help",
    "list": "list",
    "usage": "sales-adls --bogus one two three four",
    "unknown": "no-such-source-at-all",
}


@dataclass
class Job:
    """One command and what it should leave in Slack."""

    n: int
    kind: str  # check, replay, help, list, usage, unknown, mention, click
    channel: str
    acks: list[Sent] = field(default_factory=list)
    thread_ts: str = ""  # mention: the mentioning message; click: the report's parent

    @property
    def busy(self) -> bool:
        return any("busy" in ack.text for ack in self.acks)


class Soak:
    def __init__(self, serve: ServeProcess, slack: FakeSlack, http: aiohttp.ClientSession) -> None:
        self.url = f"{serve.url}/slack/events"
        self.slack = slack
        self.http = http
        self.jobs: list[Job] = []
        self.slots = asyncio.Semaphore(IN_FLIGHT)
        self.requests = 0

    def job(self, kind: str, **kw: str) -> Job:
        n = len(self.jobs)
        job = Job(n, kind, kw.get("channel", f"C0SOAK{n:05d}"), thread_ts=kw.get("thread_ts", ""))
        self.jobs.append(job)
        return job

    async def _send(self, job: Job, request: signing.SlackRequest, **kw: int) -> None:
        job.acks.append(await deliver(self.http, self.url, SECRET, request, **kw))
        self.requests += 1

    async def run(self, job: Job, source: str = "sales-adls", value: str = "", message_ts: str = "") -> None:
        async with self.slots:
            user, trigger, response_url = (
                f"W{job.n:05d}",
                f"{job.n}.{job.n}.soak",
                self.slack.response_url(f"r{job.n}"),
            )
            if job.kind in ("check", "replay"):
                request = slash(source, job.channel, user, response_url, trigger)
                stamp = int(time.time())
                await self._send(job, request, timestamp=stamp)
                if job.kind == "replay":  # the same signed bytes again
                    await self._send(job, request, timestamp=stamp)
            elif job.kind in EPHEMERAL_TEXTS:
                await self._send(
                    job, slash(EPHEMERAL_TEXTS[job.kind], job.channel, user, response_url, trigger)
                )
            elif job.kind == "mention":
                request = signing.app_mention(f"check {source}", job.channel, job.thread_ts, user=user)
                for retry in (None, 1, 2):  # one event_id, Slack's retries after it
                    await self._send(job, request, **({} if retry is None else {"retry": retry}))
            elif job.kind == "click":
                request = click(value, job.channel, message_ts, job.thread_ts, response_url, trigger, user)
                await self._send(job, request)
            else:
                raise AssertionError(job.kind)

    # --- what Slack holds ------------------------------------------------------------------------------

    def index(self) -> None:
        """Read what Slack holds once: bot messages by channel (top level) and by thread (replies)."""
        self._top: dict[str, list[Message]] = defaultdict(list)
        self._replies: dict[tuple[str, str], list[Message]] = defaultdict(list)
        for m in sorted(self.slack.messages.values(), key=lambda m: float(m.ts)):
            if m.bot_id != BOT_ID:
                continue
            if m.is_top_level:
                self._top[m.channel].append(m)
            else:
                self._replies[(m.channel, str(m.thread_ts))].append(m)

    def top_level(self, channel: str) -> list[Message]:
        return self._top.get(channel, [])

    def reports_in(self, channel: str, thread_ts: str) -> list[Message]:
        """Finished reports in a thread: one message with the Re-check button each, the verdict aside (it
        carries the button too, and is the thread's parent for a slash command, a reply for a mention)."""
        return [
            m
            for m in self._replies.get((channel, thread_ts), [])
            if has_rerun_button(m) and (m.metadata or {}).get("event_type") != "purview_report"
        ]

    def pending(self, jobs: list[Job], clicks: Counter[tuple[str, str]]) -> list[Job]:
        """Jobs whose report has not arrived yet."""
        self.index()
        waiting = []
        for job in jobs:
            if job.busy:
                continue
            if job.kind in ("check", "replay"):
                parents = [m for m in self.top_level(job.channel) if is_report_parent(m)]
                if not parents or not self.reports_in(job.channel, parents[0].ts):
                    waiting.append(job)
            elif job.kind == "mention" and not self.reports_in(job.channel, job.thread_ts):
                waiting.append(job)
            elif job.kind == "click":
                key = (job.channel, job.thread_ts)
                if len(self.reports_in(*key)) < 1 + clicks[key]:
                    waiting.append(job)
        return waiting


async def wait_until(done: Callable[[], bool], within: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + within
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not done within {within:.0f} s: {what()}")
        await asyncio.sleep(0.25)


async def gather_bounded(coros: list[Awaitable[None]]) -> None:
    await asyncio.gather(*coros)


@pytest.mark.soak
async def test_soak_2000_mixed_requests_with_a_flaky_slack(tmp_path: Path) -> None:
    started = time.monotonic()
    rng = random.Random(2026)
    async with Sandbox(load_world(None), latency_ms=0) as sb, FakeSlack() as slack:
        flaky = FlakySlack(slack, rate=0.05)
        flaky.install()
        env = serve_env(
            sb,
            slack,
            tmp_path,
            {
                "PURVIEW_BOT_USER_RATE": "0",
                "PURVIEW_BOT_CHANNEL_RATE": "0",
                "PURVIEW_BOT_MAX_QUEUED": "5000",
            },
        )
        connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
        async with serving(env, tmp_path) as serve, aiohttp.ClientSession(connector=connector) as http:
            soak = Soak(serve, slack, http)
            pid = serve.proc.pid
            rss: list[tuple[float, int]] = [(time.monotonic(), rss_kib(pid))]
            sampling = True

            async def sample() -> None:
                while sampling:
                    await asyncio.sleep(1.0)
                    with contextlib.suppress(OSError):
                        rss.append((time.monotonic(), rss_kib(pid)))

            sampler = asyncio.create_task(sample())
            clicks: Counter[tuple[str, str]] = Counter()
            try:
                # warm-up: checks (their threads get the Re-run clicks later) and a few of each other kind
                warm = [soak.job("check") for _ in range(WARM_CHECKS)]
                warm += [soak.job(kind) for kind in EPHEMERAL_TEXTS for _ in range(WARM_OTHERS)]
                await gather_bounded(
                    [soak.run(j, source=rng.choice(["sales-adls", "healthy-blob"])) for j in warm]
                )
                await wait_until(
                    lambda: not soak.pending(warm, clicks),
                    BUDGET / 3,
                    lambda: f"{len(soak.pending(warm, clicks))} warm-up reports missing\n{serve.log()}",
                )
                await slack.settle(quiet=0.5, timeout=20)
                warm_rss = rss_kib(pid)
                rss.append((time.monotonic(), warm_rss))
                threads = []
                soak.index()
                for job in warm:
                    if job.kind == "check" and not job.busy:
                        parent = next(m for m in soak.top_level(job.channel) if is_report_parent(m))
                        report = soak.reports_in(job.channel, parent.ts)[-1]
                        threads.append((job.channel, parent.ts, report.ts, rerun_value(report)))
                assert threads

                # the main phase, shuffled
                runs: list[Awaitable[None]] = []
                for _ in range(CHECKS):
                    runs.append(
                        soak.run(soak.job("check"), source=rng.choice(["sales-adls", "healthy-blob"]))
                    )
                runs += [soak.run(soak.job("replay")) for _ in range(REPLAYS)]
                runs += [soak.run(soak.job(kind)) for kind in EPHEMERAL_TEXTS for _ in range(EPHEMERAL)]
                for i in range(MENTIONS):
                    job = soak.job("mention")
                    job.thread_ts = now_ts(i + 1)
                    # the mentioning message is in the channel, as in Slack (the bot's thread lookups read it)
                    slack.add_message(
                        job.channel, job.thread_ts, "<@U0PURVIEWBOT> check", user=f"W{job.n:05d}"
                    )
                    runs.append(soak.run(job, source=rng.choice(["sales-adls", "healthy-blob"])))
                for i in range(CLICKS):
                    channel, parent_ts, report_ts, value = threads[i % len(threads)]
                    job = soak.job("click", channel=channel, thread_ts=parent_ts)
                    clicks[(channel, parent_ts)] += 1
                    runs.append(soak.run(job, value=value, message_ts=report_ts))
                rng.shuffle(runs)
                await gather_bounded(runs)
                sent_at = time.monotonic()
                sent_rss = rss_kib(pid)  # everything queued: the bot's working set at its largest
                assert soak.requests == TOTAL == 2000

                left = BUDGET - (time.monotonic() - started)
                await wait_until(
                    lambda: not soak.pending(soak.jobs, clicks),
                    max(10.0, left - 10),
                    lambda: (
                        f"{len(soak.pending(soak.jobs, clicks))} reports missing, e.g. "
                        f"{[(j.kind, j.channel, j.acks) for j in soak.pending(soak.jobs, clicks)[:5]]}"
                        f"\n{serve.log()}"
                    ),
                )
                reported_at = time.monotonic()
                await slack.settle(quiet=1.0, timeout=20)
                done_at = time.monotonic()
            finally:
                sampling = False
                await sampler
            final_rss = rss_kib(pid)
            rss.append((time.monotonic(), final_rss))
            serve.signal(signal.SIGTERM)
            code = await serve.exit_code(within=30)

    # --- every request acked, every command answered once ----------------------------------------------
    bad_acks = [
        (j.kind, j.channel, a.status, a.text[:80]) for j in soak.jobs for a in j.acks if a.status != 200
    ]
    assert not bad_acks, f"{len(bad_acks)} requests not acked 200: {bad_acks[:5]}"
    busy = [j for j in soak.jobs if j.busy]
    assert all(j.kind in ("check", "replay", "list", "mention", "click") for j in busy)

    problems: list[str] = []
    soak.index()
    for job in soak.jobs:
        top = soak.top_level(job.channel)
        parents = [m for m in top if is_report_parent(m)]
        if job.kind in ("check", "replay"):
            want = 0 if job.busy else 1
            if len(parents) != want or len(top) != want:
                problems.append(
                    f"{job.kind} {job.channel}: {len(parents)} parents, {len(top)} top-level posts"
                )
            for parent in parents:  # a clicked thread's reports are counted with the clicks below
                if not clicks[(job.channel, parent.ts)] and len(soak.reports_in(job.channel, parent.ts)) != 1:
                    problems.append(
                        f"{job.kind} {job.channel}: {len(soak.reports_in(job.channel, parent.ts))} reports"
                    )
        elif job.kind in EPHEMERAL_TEXTS:
            if top:
                problems.append(f"{job.kind} {job.channel}: posted {len(top)} in the channel")
            if not (job.acks[0].text.strip() or slack_calls_for(slack, f"r{job.n}")):
                problems.append(f"{job.kind} {job.channel}: no answer")
        elif job.kind == "mention":
            reports = soak.reports_in(job.channel, job.thread_ts)
            if top or len(reports) != (0 if job.busy else 1):
                problems.append(
                    f"mention {job.channel}: {len(reports)} reports, {len(top)} top-level posts; "
                    f"acks {[(a.status, a.text[:40]) for a in job.acks]}; "
                    f"calls\n  {calls_in(slack, job.channel)}"
                )
    for (channel, thread_ts), n in clicks.items():
        busy_clicks = sum(1 for j in busy if j.kind == "click" and j.channel == channel)
        reports = soak.reports_in(channel, thread_ts)
        if len(reports) != 1 + n - busy_clicks:
            problems.append(
                f"clicks {channel}: {len(reports)} reports for 1 + {n} clicks ({busy_clicks} busy)"
            )
    assert not problems, f"{len(problems)} commands not answered exactly once: {problems[:20]}"

    # no post stored twice (a retry after a 5xx that had stored it), counted by the post id in its metadata
    ids = Counter(post_id(m) for m in slack.messages.values() if post_id(m))
    twice = [pid_ for pid_, n in ids.items() if n > 1]
    assert not twice, f"{len(twice)} posts stored twice: {twice[:5]}"
    kinds = {j.channel: j.kind for j in soak.jobs}
    stuck = [m for m in slack.messages.values() if "Checking" in m.text]
    assert not stuck, f"{len(stuck)} messages still read 'Checking…': " + "\n".join(
        f"{kinds.get(m.channel)} {m.channel} {m.ts}:\n  {calls_in(slack, m.channel)}" for m in stuck[:3]
    )
    assert flaky.failed.get("chat.postMessage") and flaky.failed.get("chat.update"), flaky.failed

    # --- the process ---------------------------------------------------------------------------------
    log = "\n".join(serve.lines)
    assert code == 0, serve.log()
    assert "Traceback" not in log, serve.log()
    assert final_rss <= RSS_GROWTH * warm_rss, (
        f"RSS grew from {warm_rss} KiB after the warm-up to {final_rss} KiB: "
        f"{[kib for _, kib in rss[:: max(1, len(rss) // 20)]]}"
    )
    # and no growth while the 1,250 diagnoses queued at the end of the sending are worked off
    assert final_rss <= 1.1 * sent_rss, f"RSS grew from {sent_rss} KiB when all was sent to {final_rss} KiB"
    print(
        f"\nsoak: {soak.requests} requests ({len(soak.jobs)} commands, {len(busy)} busy), "
        f"5xx from Slack {dict(flaky.failed)}, {len(slack.calls)} Slack calls, "
        f"RSS {warm_rss} → {final_rss} KiB (peak {max(k for _, k in rss)}; "
        f"every ~5 s {[k // 1024 for _, k in rss[::5]]} MiB), "
        f"sent in {sent_at - started:.1f} s, reported at {reported_at - started:.1f} s, "
        f"settled at {done_at - started:.1f} s, "
        f"{time.monotonic() - started:.1f} s in all"
    )


def slack_calls_for(slack: FakeSlack, response_id: str) -> int:
    return sum(1 for c in slack.calls_to("response_url") if c.response_id == response_id)


def calls_in(slack: FakeSlack, channel: str) -> str:
    """What the bot asked Slack in one channel, for a failure's message."""
    return "\n  ".join(
        f"{c.method} {c.status} ts={c.args.get('ts')} thread={c.args.get('thread_ts')} "
        f"{str(c.args.get('metadata'))[:100]} {c.text[:40]!r} -> {str(c.response)[:60]}"
        for c in slack.calls
        if c.args.get("channel") == channel
    )
