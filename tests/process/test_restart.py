"""Restart safety: a watcher SIGKILLed in the middle of a sweep loses no failure and posts none twice.

The world has N scans failing on distinct causes (each names its own storage account, so no storm merges
them). `python -m bot watch --once` runs as a child process against the sandbox (in this loop) and a slow
fake Slack; it is SIGKILLed at the moment Slack stores its third parent post, before Slack answers: that
post exists in Slack but not in the store, and the diagnoses in flight hold claims nobody will post. Then
`watch --once` is run again until every failure is posted with its report in the thread. The contract:
claims are taken over once older than 2 × the diagnosis deadline (PURVIEW_BOT_DEADLINE, small here), and
the channel's history is searched for the run id before posting again; a parent found there with an empty
thread (the process died between the two) gets its report in that thread. Checked on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from pathlib import Path

from sandbox import Sandbox, load_world
from sandbox.generate import failing_runs, generated_world
from tests.process.harness import (
    TOKEN,
    SlowSlack,
    WatchProcess,
    describe,
    parents,
    post_counts,
    runs_in,
    watch_env,
)
from tests.slack.fake_slack import Call

FAILING = 30
HEALTHY = 10
CHANNELS = 6  # failures routed over several channels: the ~1 message/s/channel pacing stays short
KILL_AT = 3  # SIGKILL when Slack stores this parent post
DEADLINE = 2.0  # PURVIEW_BOT_DEADLINE: claims go stale after 2 × 2 s
LATENCY_MS = 20
POST_DELAY = 0.2  # each chat.postMessage takes 200 ms
INTERVAL = 2.0  # the lease's TTL is interval / 2: a dead holder's lease blocks restarts that long
BUDGET = 50.0
FIRST_TOKEN = "xoxb-killed-process"  # seconds for the whole test, kill and restarts included


def _routes(sources: list[str]) -> str:
    return json.dumps([{"channel": f"C0WATCH{i % CHANNELS}", "source": s} for i, s in enumerate(sources)])


def _empty_threads(slack: SlowSlack, expected: Iterable[str]) -> list[Call]:
    """Parents naming an expected run whose thread has no reply (no report)."""
    return [
        call
        for call in parents(slack)
        if runs_in(call, expected) and not slack.thread(call.args["channel"], call.response["ts"])
    ]


async def test_sigkill_mid_sweep_posts_every_failure_exactly_once(database_url: str, tmp_path: Path) -> None:
    url = database_url
    backend = url.split(":", 1)[0]
    world = generated_world(FAILING + HEALTHY, 1, FAILING, seed=11)
    expected = failing_runs(world)  # run id → "SOURCE/SCAN"
    assert len(expected) == FAILING
    sources = sorted({key.split("/")[0] for key in expected.values()})
    started = time.monotonic()
    async with (
        Sandbox(load_world(world), latency_ms=LATENCY_MS) as sb,
        SlowSlack(post_delay=POST_DELAY) as slack,
    ):
        routes = {"PURVIEW_BOT_ROUTES": _routes(sources)}
        env = watch_env(sb, slack, url, deadline=DEADLINE, interval=INTERVAL, extra=routes)
        first_env = {**env, "SLACK_BOT_TOKEN": FIRST_TOKEN}  # the fake Slack tells its posts apart
        first = await WatchProcess.start("first", first_env, tmp_path, once=True)
        killed = asyncio.Event()
        in_flight: set[str] = set()  # runs whose post Slack stored while the process died
        kill: asyncio.Task[None] | None = None

        async def kill_at_nth_parent(call: Call) -> None:
            nonlocal kill
            if call.args.get("thread_ts") or not runs_in(call, expected):
                return
            if kill is None and len([p for p in parents(slack) if runs_in(p, expected)]) >= KILL_AT:
                kill = asyncio.create_task(first.kill())
            if kill is not None:  # this post and any concurrent one: stored, never answered
                in_flight.update(runs_in(call, expected))
                await kill
                killed.set()

        slack.on_post = kill_at_nth_parent
        done = asyncio.create_task(first.wait(BUDGET))
        killer = asyncio.create_task(killed.wait())
        await asyncio.wait({done, killer}, timeout=BUDGET / 2, return_when=asyncio.FIRST_COMPLETED)
        killer.cancel()
        slack.on_post = None
        try:
            assert killed.is_set(), (
                f"the first sweep never reached its parent post #{KILL_AT} (exit {first.proc.returncode}); "
                f"{len(parents(slack))} parents posted\n{first.log()}"
            )
            await done
        finally:
            await first.stop()
        before = post_counts(slack, expected)
        assert sum(before.values()) >= KILL_AT

        restarts: list[WatchProcess] = []
        while time.monotonic() - started < BUDGET:
            proc = await WatchProcess.start(f"restart-{len(restarts) + 1}", env, tmp_path, once=True)
            restarts.append(proc)
            try:
                code = await proc.wait(max(1.0, BUDGET - (time.monotonic() - started)))
            finally:
                await proc.stop()
            assert code == 0, f"watch --once exited {code}\n{proc.log()}"
            if set(post_counts(slack, expected)) >= set(expected) and not _empty_threads(slack, expected):
                break
            await asyncio.sleep(1.0)  # the dead process's claims go stale after 2 × deadline
        await slack.settle(quiet=0.5)

        counts = post_counts(slack, expected)
        logs = "\n".join(p.log(15) for p in [first, *restarts])
        assert set(counts) == set(expected) and set(counts.values()) == {1}, (
            f"{describe(counts, expected)} after {len(restarts)} restart(s) "
            f"({backend}; killed while posting {sorted(in_flight)})\n{logs}"
        )
        # the posts Slack stored as the process died: found in the channel's history, not posted again
        assert all(counts[r] == 1 for r in in_flight)
        assert slack.calls_to("conversations.history", ok=True), "the history was never searched"
        # every parent carries its report in the thread, the killed process's too: it died before their
        # thread, and the restart found them in the history with no reply and posted the report there
        empty = {
            call.response["ts"]: sorted(runs_in(call, expected)) for call in _empty_threads(slack, expected)
        }
        assert not empty, f"parents without a report in their thread (ts → runs): {empty}\n{logs}"
        finished = [
            call
            for call in parents(slack)
            if call.authorization == f"Bearer {FIRST_TOKEN}" and runs_in(call, in_flight)
        ]
        assert finished, "the killed process's last parents were not found"
        for call in finished:  # by a restarted process, into the killed process's parent
            replies = slack.thread(call.args["channel"], call.response["ts"])
            assert all(reply.authorization == f"Bearer {TOKEN}" for reply in replies)
        print(
            f"\n{backend}: killed at parent #{KILL_AT} ({len(in_flight)} stored unanswered), "
            f"{len(restarts)} restart(s), {sum(counts.values())} failures posted once, "
            f"{len(finished)} parent(s) of the killed process finished by a restart, "
            f"{time.monotonic() - started:.1f} s"
        )
        assert time.monotonic() - started < BUDGET + 10
