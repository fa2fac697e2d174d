"""Issue 9, items 8 and 10: the bot without its database.

Before: `serve` exited 1 when PostgreSQL was down (a crash loop, no slash commands), hung 61 s on a
database that accepts connections and never answers, and the alert webhook answered 202 for runs it then
dropped. Now `serve` starts at once and answers slash commands without the database, `/healthz` says
"degraded" (naming the store), the webhook answers 503 with `Retry-After` until the database is back,
the watcher waits and starts once it is, and the same happens when the database goes away and comes back
while the bot runs. `purview-bot watch` waits too; `watch --once` (a cron job) exits 1 in a bounded time.

The PostgreSQL here is the test's own (initdb/pg_ctl in a temp dir on a free port), stopped and started
at will; the silent database is a loopback TCP server that accepts and never answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.server import serve_http
from bot.settings import Settings
from checks.gateways import factory
from sandbox import Sandbox, load_world
from tests.process.own_postgres import OwnPostgres, free_port, silent_server
from tests.slack.conftest import CHANNEL, FAST_AZURE_RETRY, BotHarness, bot_environment, plain
from tests.slack.fake_slack import FakeSlack
from tests.watch.alert_payloads import PURVIEW_ID, dims, purview_v2
from tests.watch.conftest import make_run

SECRET = "outage-webhook-secret"
ALERTS = "C0ALERTS"
ACCOUNT = "contoso-pv"


def outage_env(sandbox: Sandbox, slack: FakeSlack, tmp: Path, database_url: str) -> dict[str, str]:
    return bot_environment(
        sandbox,
        slack,
        tmp,
        PURVIEW_BOT_DATABASE_URL=database_url,
        PURVIEW_BOT_DATABASE_TIMEOUT="1",
        PURVIEW_BOT_WATCH_INTERVAL="2",
        PURVIEW_BOT_WATCH_LOOKBACK="600",  # the sample's own failures are hours old: only ours are news
        PURVIEW_BOT_WEBHOOK_SECRET=SECRET,
        PURVIEW_BOT_ALERT_CHANNEL=ALERTS,
        PURVIEW_BOT_DRAIN_SECONDS="2",
        PURVIEW_BOT_DEADLINE="20",
    )


async def health(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with session.get(f"{url}/healthz") as resp:
        return resp.status, await resp.json()


async def health_when(
    session: aiohttp.ClientSession,
    url: str,
    store: str,
    within: float,
) -> tuple[int, dict[str, Any]]:
    """`/healthz` once Slack is verified and its store check starts with `store`."""
    deadline = time.monotonic() + within
    seen: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError):
            status, body = await health(session, url)
            seen = body
            checks = body.get("checks", {})
            if checks.get("slack") == "ok" and str(checks.get("store", "")).startswith(store):
                return status, body
        await asyncio.sleep(0.1)
    raise AssertionError(f"/healthz never said store {store!r} within {within} s; last: {seen}")


async def post_alert(session: aiohttp.ClientSession, url: str, run_id: str) -> aiohttp.ClientResponse:
    alert = purview_v2(
        dims(DataSourceName="sales-adls", ScanName="weekly", ScanResultId=run_id, _ResourceId=PURVIEW_ID)
    )
    async with session.post(f"{url}/alerts/azure-monitor?token={SECRET}", json=alert) as resp:
        await resp.read()
        return resp


def new_failure(sandbox: Sandbox) -> str:
    """A run of sales-adls/weekly that failed a minute ago, as Purview would show it now."""
    runs = sandbox.world.purview[ACCOUNT].runs["sales-adls/weekly"]
    run = make_run(runs[0], status="Failed", ended=datetime.now(UTC) - timedelta(minutes=1))
    runs.insert(0, run)
    return str(run["id"])


def parents_naming(slack: FakeSlack, run_id: str) -> list[Any]:
    return [
        c
        for c in slack.calls_to("chat.postMessage", ok=True)
        if not c.args.get("thread_ts") and run_id in json.dumps(c.args.get("metadata"))
    ]


async def a_report_works(bot: BotHarness) -> None:
    """A slash command gets its report in the channel, the database or not."""
    started = time.monotonic()
    await bot.command("sales-adls")
    report = await bot.report(CHANNEL, after=started)
    assert "source-access" in report.thread_text
    ack = await bot.command("watches")
    said = plain(await bot.ephemeral(ack, "database"))
    assert "could not open just now" in said


# --- a database that accepts and never answers (in process) ---------------------------------------------


async def test_serve_starts_at_once_on_a_database_that_never_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        silent_server() as port,
        Sandbox(load_world(None)) as sandbox,
        FakeSlack() as slack,
        contextlib.AsyncExitStack() as stack,
    ):
        monkeypatch.chdir(tmp_path)
        for name in ("SLACK_APP_TOKEN", "PURVIEW_BOT_ROUTES"):
            monkeypatch.delenv(name, raising=False)
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/pv"
        for name, value in outage_env(sandbox, slack, tmp_path, url).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(factory, "RetrySettings", lambda: FAST_AZURE_RETRY)
        started = time.monotonic()
        # before: the connect waited for asyncpg's default 60 s (and then serve exited)
        base = await asyncio.wait_for(stack.enter_async_context(serve_http(Settings())), 15)
        assert time.monotonic() - started < 15
        session = await stack.enter_async_context(aiohttp.ClientSession())
        bot = BotHarness(base.rstrip("/"), slack, sandbox, session)

        status, body = await health_when(session, bot.url, "database", 10)
        assert status == 200 and body["status"] == "degraded" and body["degraded"] == ["store"]
        assert body["checks"]["store"] == "database unavailable: no answer in time"
        assert str(port) not in json.dumps(body)
        await a_report_works(bot)
        run_id = new_failure(sandbox)
        resp = await post_alert(session, bot.url, run_id)
        assert resp.status == 503 and resp.headers["Retry-After"] == "60"


# --- a PostgreSQL stopped and started under `serve` (a child process) -------------------------------------


class Child:
    """`python -m bot ARGS` with `env`, its log (stderr) read as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, args: list[str], env: Mapping[str, str], cwd: Path) -> AsyncIterator[Child]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "PURVIEW_", "SLACK_"))}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            *args,
            env={**base, **env, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"},
            cwd=cwd,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        child = cls(proc)
        try:
            yield child
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            await asyncio.wait_for(proc.wait(), 10)
            await asyncio.wait_for(child._reader, 5)

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.lines.append(line.decode("utf-8", "replace").rstrip())

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def logged(self, text: str, within: float) -> None:
        deadline = time.monotonic() + within
        while text not in self.log:
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"never logged {text!r} (exit {self.proc.returncode}):\n{self.log[-4000:]}"
                )
            await asyncio.sleep(0.1)

    async def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), 30)


async def test_serve_runs_without_postgresql_and_catches_up_when_it_comes_and_goes(tmp_path: Path) -> None:
    async with (
        OwnPostgres.created() as pg,
        Sandbox(load_world(None)) as sandbox,
        FakeSlack() as slack,
        aiohttp.ClientSession() as session,
    ):
        port = free_port()
        env = {
            **outage_env(sandbox, slack, tmp_path, pg.url),
            "PORT": str(port),
            "PURVIEW_BOT_HOST": "127.0.0.1",
        }
        async with Child.running(["serve"], env, tmp_path) as serve:
            bot = BotHarness(f"http://127.0.0.1:{port}", slack, sandbox, session)
            # the database is down: serve is up (before: exit 1), degraded, and answers slash commands
            status, body = await health_when(session, bot.url, "database", 20)
            assert status == 200 and body["status"] == "degraded"
            assert body["checks"]["store"] == "database unavailable: connection refused"
            await a_report_works(bot)
            early = new_failure(sandbox)
            resp = await post_alert(session, bot.url, early)
            assert resp.status == 503 and resp.headers["Retry-After"] == "60"  # Azure Monitor retries
            await serve.logged("the watcher waits for the database", 5)

            # it comes up: found within the backoff, the watcher starts, the retried alert is posted
            await pg.start()
            status, body = await health_when(session, bot.url, "ok", 30)
            assert status == 200 and body["status"] == "ok"
            resp = await post_alert(session, bot.url, early)  # Azure Monitor's retry
            assert resp.status == 202
            await slack.wait_for(
                "chat.postMessage", lambda c: bool(c.ok and parents_naming(slack, early)), timeout=30
            )
            await serve.logged("the database is open: the watcher starts", 5)

            # it goes away while serve runs: noticed, degraded, 503 again
            await pg.stop()
            status, body = await health_when(session, bot.url, "database", 20)
            assert body["status"] == "degraded"
            late = new_failure(sandbox)
            resp = await post_alert(session, bot.url, late)
            assert resp.status == 503
            await a_report_works(bot)

            # and back: the probe finds it, the sweep posts what failed meanwhile, once
            await pg.start()
            await health_when(session, bot.url, "ok", 40)
            await slack.wait_for(
                "chat.postMessage", lambda c: bool(c.ok and parents_naming(slack, late)), timeout=30
            )
            assert await serve.stop() == 0
        assert len(parents_naming(slack, early)) == 1 and len(parents_naming(slack, late)) == 1
        (tmp_path / "serve.log").write_text(serve.log)
        # the watcher and the store say what happens in one line each, no traceback
        noisy = [ln for ln in serve.lines if ln.startswith(("ERROR bot.store", "ERROR handlers.watch"))]
        assert not noisy, "\n".join(noisy)


async def test_watch_waits_for_postgresql_and_watch_once_gives_up_in_bounded_time(tmp_path: Path) -> None:
    async with (
        OwnPostgres.created() as pg,
        Sandbox(load_world(None)) as sandbox,
        FakeSlack() as slack,
    ):
        env = outage_env(sandbox, slack, tmp_path, pg.url)
        started = time.monotonic()
        async with Child.running(["watch", "--once"], env, tmp_path) as once:
            assert await asyncio.wait_for(once.proc.wait(), 20) == 1
        assert time.monotonic() - started < 20
        assert "the database (PURVIEW_BOT_DATABASE_URL) is unavailable" in once.log

        async with Child.running(["watch"], env, tmp_path) as watch:
            await watch.logged("the watcher waits for the database", 15)
            assert watch.proc.returncode is None  # waiting, not exited
            await pg.start()
            await watch.logged("sweep of contoso-pv:", 40)
            assert await watch.stop() == 0
