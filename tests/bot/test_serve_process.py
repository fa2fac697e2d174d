"""`purview-bot serve` as a process, attacked and stopped for real.

- Slow clients: 400 connections trickling partial headers or bodies into a server whose file limit is 256
  used to exhaust it (HTTP 500 on the real command, 23 MB of log in 20 s). Now each is cut off after the
  read timeout, at most PURVIEW_BOT_HTTP_MAX_CONNECTIONS are open, a real signed slash command gets its
  200 and its report meanwhile, and the log stays small.
- Shutdown: a SIGTERM waits PURVIEW_BOT_DRAIN_SECONDS for reports in progress, a second one skips the wait;
  either way the unfinished "Checking…" parent becomes "interrupted by a restart" with a Re-run button,
  and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from pathlib import Path

import aiohttp
import pytest

from sandbox import Sandbox, load_world
from tests.bot.serve_process import SECRET, ServeProcess, serve_env, serving
from tests.slack import signing
from tests.slack.fake_slack import Call, FakeSlack

CHANNEL = "C0SERVE"
SLOW_CLIENTS = 400
FILE_LIMIT = 256


async def send_command(
    http: aiohttp.ClientSession, serve: ServeProcess, slack: FakeSlack, name: str
) -> tuple[int, str]:
    request = signing.slash_command("sales-adls", channel_id=CHANNEL, response_url=slack.response_url(name))
    status, text, _ = await signing.post_signed(http, f"{serve.url}/slack/events", request, secret=SECRET)
    return status, text


def top_level(call: Call) -> bool:
    return call.ok and call.args.get("channel") == CHANNEL and not call.args.get("thread_ts")


# --- shutdown -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stop", ["second SIGTERM", "drain window elapses"])
async def test_shutdown_marks_the_unfinished_report_interrupted_and_exits_0(
    tmp_path: Path, stop: str
) -> None:
    drain = "60" if stop == "second SIGTERM" else "1"
    async with Sandbox(load_world(None)) as sb, FakeSlack() as slack:
        # the diagnosis hangs on the scan's runs: it is still "Checking…" when the signal comes
        sb.add_fault({"path": r"/scans/weekly/runs", "delayMs": 8_000})
        env = serve_env(sb, slack, tmp_path, {"PURVIEW_BOT_DRAIN_SECONDS": drain})
        async with serving(env, tmp_path) as serve, aiohttp.ClientSession() as http:
            status, _ = await send_command(http, serve, slack, "slow")
            assert status == 200
            parent = await slack.wait_for("chat.postMessage", top_level, timeout=20)
            serve.signal(signal.SIGTERM)
            await serve.wait_for_line(r"waiting up to \d+ s for 1 report")
            if stop == "second SIGTERM":
                assert serve.proc.returncode is None  # draining: the first signal did not kill it
                serve.signal(signal.SIGTERM)
            code = await serve.exit_code(within=15)
        assert code == 0, serve.log()
        edits = [
            c for c in slack.calls_to("chat.update", ok=True) if c.args.get("ts") == parent.response["ts"]
        ]
        assert edits, f"the parent was never edited:\n{serve.log()}"
        last = edits[-1]
        assert "interrupted by a restart" in last.text and "run the command again" in last.text
        assert last.has_rerun_button
        assert '"s":"sales-adls"' in str(last.button("purview_rerun"))
        assert "Traceback" not in "\n".join(serve.lines)


# --- slow clients ---------------------------------------------------------------------------------------


class Closed:
    """Which slow clients the server has cut off (EOF, reset or refused)."""

    def __init__(self, expected: int) -> None:
        self.indexes: set[int] = set()
        self.expected = expected
        self.all = asyncio.Event()

    def add(self, index: int) -> None:
        self.indexes.add(index)
        if len(self.indexes) >= self.expected:
            self.all.set()


async def slow_client(url: str, index: int, until: asyncio.Event, closed: Closed) -> None:
    """Half send partial headers, half full headers and a partial body; then a byte every 0.5 s until the
    server closes the connection (recorded in `closed`) or the test is over."""
    host, port = url.removeprefix("http://").split(":")
    try:
        reader, writer = await asyncio.open_connection(host, int(port))
    except OSError:
        closed.add(index)  # refused outright also counts as not held open
        return
    if index % 2:
        writer.write(b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nX-Slack-Signature: v0=")
    else:
        writer.write(b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Length: 4000\r\n\r\ntoken=")
    try:
        while not until.is_set():
            with contextlib.suppress(TimeoutError):
                if await asyncio.wait_for(reader.read(4096), 0.5 + random.random() * 0.1) == b"":
                    closed.add(index)
                    return
            writer.write(b"a")
            await writer.drain()
    except (ConnectionError, OSError):
        closed.add(index)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def test_slow_clients_do_not_exhaust_the_server(tmp_path: Path) -> None:
    async with Sandbox(load_world(None)) as sb, FakeSlack() as slack:
        env = serve_env(sb, slack, tmp_path)
        async with serving(env, tmp_path, max_files=FILE_LIMIT) as serve, aiohttp.ClientSession() as http:
            log_at_start = serve.log_bytes
            over, closed = asyncio.Event(), Closed(SLOW_CLIENTS)
            clients = []
            for index in range(SLOW_CLIENTS):
                clients.append(asyncio.create_task(slow_client(serve.url, index, over, closed)))
                if index % 50 == 49:
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1)  # all 400 connected and trickling
            try:
                status, text = await asyncio.wait_for(send_command(http, serve, slack, "real"), 15)
                assert status == 200 and "sales-adls" in text, text
                parent = await slack.wait_for("chat.postMessage", top_level, timeout=30)
                report = await slack.wait_for(
                    "chat.postMessage",
                    lambda c: (
                        c.ok and c.args.get("thread_ts") == parent.response["ts"] and c.has_rerun_button
                    ),
                    timeout=30,
                )
                assert report.ok
                # every slow client is cut off: the read timeout (5 s) or the connection limit
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closed.all.wait(), 15)
                still_open = SLOW_CLIENTS - len(closed.indexes)
                assert not still_open, f"{still_open} slow clients still open"
            finally:
                over.set()
                await asyncio.gather(*clients, return_exceptions=True)
            async with http.get(f"{serve.url}/metrics") as resp:
                metrics = await resp.text()
            serve.signal(signal.SIGTERM)
            assert await serve.exit_code(within=15) == 0
        log = "\n".join(serve.lines)
        assert serve.log_bytes - log_at_start < 20_000, log[-3000:]
        assert "Traceback" not in log
        assert 'purview_bot_http_refused_total{reason="connection_limit"}' in metrics
