"""Slash-command latency under load: does the ack stay fast whatever Azure's latency?

200 signed `/purview-check` commands, 50 at a time, against the bot serving HTTP (`bot.server.serve_http`),
with the sandbox adding latency to every Azure request and the fake Slack Web API recording the bot's
calls. Measures, per command, the time to the HTTP ack (Slack's deadline is 3 s; target p99 < 100 ms)
and the time to the first findings message in the thread (the fake Slack's arrival time of the thread
`chat.postMessage`). By default the bot runs in its own process, as in production, so the load generator,
the sandbox and the fake Slack do not share its event loop; `--in-process` runs it in the driver's loop.

    .venv/bin/python bench/ack.py [--commands 200] [--concurrency 50] [--latency-ms 50] [--in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests.slack helpers

import aiohttp

from sandbox import Sandbox, load_world
from tests.slack import signing
from tests.slack.fake_slack import FakeSlack

SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench"
SOURCES = [
    "sales-adls",
    "finance-sql",
    "archive-blob",
    "contoso-subscription",
    "lake-private",
    "hr-sql",
    "ops-storage contoso-legacy-pv",
    "marketing-adls",
    "healthy-blob",
]


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 of 200 samples is the 198th)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def bot_env(sandbox: Sandbox, slack: FakeSlack, workdir: str) -> dict[str, str]:
    return {
        **sandbox.env(),
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.url,
        "PURVIEW_BOT_ALLOWED_CHANNELS": "",
        "PURVIEW_BOT_WATCH_INTERVAL": "0",
        # one bench user sends every command: the per-user and per-channel limits would refuse most
        "PURVIEW_BOT_USER_RATE": "0",
        "PURVIEW_BOT_CHANNEL_RATE": "0",
        "PURVIEW_BOT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/bench.db",
    }


@contextlib.asynccontextmanager
async def bot_in_process(env: dict[str, str]) -> AsyncIterator[str]:
    os.environ.update(env)
    from bot.server import serve_http
    from bot.settings import Settings

    async with serve_http(Settings()) as url:
        yield url.rstrip("/")


@contextlib.asynccontextmanager
async def bot_in_child(env: dict[str, str], workdir: str) -> AsyncIterator[str]:
    """`python bench/ack.py --serve` with the bot's environment; it prints its URL, stops on stdin EOF."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "PURVIEW_", "SLACK_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        env={**child_env, **env},
        cwd=workdir,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not line.startswith(b"http"):
            raise RuntimeError(f"the bot did not start: {line!r}")
        yield line.decode().strip().rstrip("/")
    finally:
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def serve_child() -> None:
    from bot.server import serve_http
    from bot.settings import Settings

    async with serve_http(Settings()) as url:
        print(url, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def one_command(
    session: aiohttp.ClientSession, url: str, slack: FakeSlack, index: int, source: str
) -> tuple[float, float, int]:
    channel = f"CB{index:05d}"
    request = signing.slash_command(source, channel_id=channel, response_url=slack.response_url(f"b{index}"))
    started = time.monotonic()
    status, _, _ = await signing.post_signed(session, f"{url}/slack/events", request, secret=SECRET)
    ack = time.monotonic() - started
    if source == "help":
        return ack, ack, status
    reply = await slack.wait_for(
        "chat.postMessage",
        lambda c: c.ok and c.args.get("channel") == channel and bool(c.args.get("thread_ts")),
        timeout=300,
    )
    return ack, reply.at - started, status


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="purview-bot-bench-") as workdir:
        async with (
            Sandbox(load_world(None), latency_ms=args.latency_ms) as sandbox,
            FakeSlack() as slack,
        ):
            env = bot_env(sandbox, slack, workdir)
            bot = bot_in_process(env) if args.in_process else bot_in_child(env, workdir)
            async with bot as url, aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                # warm: tokens, auth.test, connection pools (as a serving bot is)
                await one_command(session, url, slack, 0, "healthy-blob")
                gate = asyncio.Semaphore(args.concurrency)

                async def limited(i: int) -> tuple[float, float, int]:
                    async with gate:
                        source = "help" if args.ack_only else SOURCES[i % len(SOURCES)]
                        return await one_command(session, url, slack, i, source)

                t0 = time.monotonic()
                results = await asyncio.gather(*(limited(i) for i in range(1, args.commands + 1)))
                wall = time.monotonic() - t0
    acks = [r[0] * 1000 for r in results]
    replies = [r[1] * 1000 for r in results]
    bad = sum(1 for r in results if r[2] != 200)
    where = "in-process" if args.in_process else "own process"
    print(
        f"{args.commands} commands, {args.concurrency} concurrent, sandbox latency {args.latency_ms:g} ms, "
        f"bot in its {where}, {os.cpu_count()} CPUs; non-200 acks: {bad}; wall {wall:.1f} s"
    )
    print(f"{'':28} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    rows = [("ack (HTTP response)", acks)]
    if not args.ack_only:
        rows.append(("thread reply (findings)", replies))
    for name, values in rows:
        print(f"{name:28} {percentile(values, 50):9.1f} {percentile(values, 99):9.1f} {max(values):9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--in-process", action="store_true", help="run the bot in the driver's event loop")
    parser.add_argument(
        "--ack-only",
        action="store_true",
        help="send `help` (answered in the ack, no diagnosis): the ack's own cost under the same concurrency",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve_child())
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
