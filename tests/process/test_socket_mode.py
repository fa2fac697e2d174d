"""Socket Mode end to end: `purview-bot serve` with SLACK_APP_TOKEN, as a child process, against a fake of
Slack's Socket Mode (tests/process/fake_socket_mode.py) and the sandbox.

The bot opens the connection itself (`apps.connections.open` with the app-level token, then the websocket),
gets `hello`, receives a `/purview-check sales-adls` envelope, acknowledges it on the socket with the
"Checking…" text, and posts the report through the Web API with the bot token: the parent, its summary,
the findings thread. No signing secret is set: Socket Mode has no signature to check. `/healthz` reports
the socket; SIGTERM closes it and the process exits 0.
"""

from __future__ import annotations

import contextlib
import re
import signal
import time
from collections.abc import Mapping
from pathlib import Path

import aiohttp

from sandbox import Sandbox, load_world
from tests.bot.serve_process import TOKEN, ServeProcess, serve_env, serving
from tests.process.fake_socket_mode import FakeSocketMode

APP_TOKEN = "xapp-1-A111-socket-mode-test"
CHANNEL = "C0SOCKET"
CONNECTED = re.compile(r"connected to Slack in Socket Mode; health and metrics on (http://127\.0\.0\.1:\d+)")
# sales-adls in the sample tenant: its last run failed, because Purview's identity lacks Storage Blob Data
# Reader on the storage account (whatever the wording of the report, its fix names both)
SALES_ADLS_FINDING = ("Storage Blob Data Reader", "stsalesadls")


def socket_mode_serve(
    env: Mapping[str, str], cwd: Path
) -> contextlib.AbstractAsyncContextManager[ServeProcess]:
    """`python -m bot serve` in Socket Mode, connected (its health URL read from its log)."""
    return serving(env, cwd, ready=CONNECTED)


async def test_slash_command_over_socket_mode_is_acked_on_the_socket_and_reported(tmp_path: Path) -> None:
    async with Sandbox(load_world(None)) as sb, FakeSocketMode(APP_TOKEN) as slack:
        env = serve_env(sb, slack, tmp_path, extra={"SLACK_APP_TOKEN": APP_TOKEN})
        del env["SLACK_SIGNING_SECRET"]  # not needed in Socket Mode
        async with socket_mode_serve(env, tmp_path) as serve, aiohttp.ClientSession() as http:
            await slack.wait_connected()
            opened = slack.calls_to("apps.connections.open")
            assert [c.authorization for c in opened] == [f"Bearer {APP_TOKEN}"]
            async with http.get(f"{serve.url}/healthz") as response:
                health = await response.json()
            assert health["checks"]["socketMode"] == "ok", health

            sent = time.monotonic()
            envelope_id = await slack.slash_command(
                "sales-adls", channel_id=CHANNEL, response_url=slack.response_url("socket1")
            )
            ack = await slack.wait_for_ack(envelope_id)
            acked_in = time.monotonic() - sent
            assert acked_in < 3, f"the ack took {acked_in:.2f} s (Slack gives up after 3 s)"
            assert "Checking sales-adls" in str(ack.get("payload", {}).get("text", "")).replace("*", "")

            parent = await slack.wait_for(
                "chat.postMessage",
                lambda c: c.ok and c.args.get("channel") == CHANNEL and not c.args.get("thread_ts"),
                timeout=30,
            )
            thread_ts = str(parent.response["ts"])
            last = await slack.wait_for(
                "chat.postMessage",
                lambda c: c.ok and c.args.get("thread_ts") == thread_ts and c.has_rerun_button,
                timeout=30,
            )
            update = await slack.wait_for("chat.update", lambda c: c.args.get("ts") == thread_ts)
            thread = "\n".join(c.text for c in slack.thread(CHANNEL, thread_ts))
            assert "sales-adls" in update.text and "Checking" not in update.text, update.text
            for fact in SALES_ADLS_FINDING:
                assert fact in thread, f"the findings thread does not name {fact}:\n{thread}"
            assert last is slack.thread(CHANNEL, thread_ts)[-1]
            assert parent.args["metadata"]["event_payload"]["source"] == "sales-adls"
            posts = slack.calls_to("chat.postMessage") + slack.calls_to("chat.update")
            assert all(c.authorization == f"Bearer {TOKEN}" for c in posts)
            assert slack.opened == 1 and slack.connected == 1  # one connection, no reconnects

            serve.signal(signal.SIGTERM)
            assert await serve.exit_code(within=30) == 0, serve.log()
