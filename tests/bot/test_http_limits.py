"""Slow and numerous clients against `serve_http`, over real sockets on 127.0.0.1: headers and bodies that
do not arrive in time are cut off, the connection count is capped (a trickling client makes room for a
real request), and a real signed slash command still gets its 200 and its report."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics
from bot.server import EVENTS_PATH, HttpLimits, Readiness, running, serve_http, web_application
from bot.settings import Settings
from handlers.watch.webhook import ALERTS_PATH, alert_route
from sandbox import Sandbox
from tests.slack import signing
from tests.slack.fake_slack import FakeSlack

SECRET = "test-signing-secret"
PARTIAL_HEADERS = b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-"

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
async def slack(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
        monkeypatch.setenv("SLACK_API_URL", fake.url)
        monkeypatch.setenv("PURVIEW_BOT_WATCH_INTERVAL", "0")
        monkeypatch.setenv("PURVIEW_BOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
        yield fake


def metric(text: str, reason: str) -> float:
    prefix = f'purview_bot_http_refused_total{{reason="{reason}"}} '
    return next((float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)), 0.0)


async def trickle(url: str, first: bytes = PARTIAL_HEADERS) -> Connection:
    """A connection that sent `first` and then nothing."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(first)
    await writer.drain()
    return reader, writer


async def closed_by_server(connection: Connection, within: float = 10) -> bytes:
    """Everything the server sent until it closed the connection (TimeoutError if it did not)."""
    reader, writer = connection
    try:
        return await asyncio.wait_for(reader.read(), within)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def slash_command(
    http: aiohttp.ClientSession, url: str, slack: FakeSlack, name: str
) -> tuple[int, str]:
    request = signing.slash_command("sales-adls", response_url=slack.response_url(name))
    status, text, _ = await signing.post_signed(http, f"{url}{EVENTS_PATH}", request, secret=SECRET)
    return status, text


async def test_headers_that_do_not_arrive_in_time_close_the_connection(
    slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PURVIEW_BOT_HTTP_READ_TIMEOUT", "0.5")
    async with serve_http(Settings()) as url:
        assert await closed_by_server(await trickle(url)) == b""  # nothing to answer: just closed
        assert await closed_by_server(await trickle(url, b"")) == b""  # connected, never sent a byte


async def test_a_body_that_does_not_arrive_in_time_is_408_and_closed(
    slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PURVIEW_BOT_HTTP_READ_TIMEOUT", "0.5")
    head = b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\ncommand=%2F"
    async with serve_http(Settings()) as url, aiohttp.ClientSession() as http:
        answer = await closed_by_server(await trickle(url, head))
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        async with http.get(f"{url}/metrics") as resp:
            assert metric(await resp.text(), "slow_body") == 1


async def test_the_alert_webhook_body_is_cut_off_too() -> None:
    class Intake:
        async def runs_reported(self, runs: object) -> None:
            raise AssertionError("nothing arrives")

    route = alert_route("s3cret", Intake(), Metrics())
    readiness = Readiness(AsyncWebClient(token="xoxb-test"))
    app = web_application(Metrics(), readiness, None, route, limits=HttpLimits(read_seconds=0.5))
    head = f"POST {ALERTS_PATH}?token=s3cret HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{{".encode()
    async with running(app, "127.0.0.1", 0) as url:
        answer = await closed_by_server(await trickle(url, head))
    assert answer.startswith(b"HTTP/1.1 408 "), answer


async def test_an_alert_body_cut_off_by_its_client_is_one_log_line_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Intake:
        async def runs_reported(self, runs: object) -> None:
            raise AssertionError("nothing arrives")

    route = alert_route("s3cret", Intake(), Metrics())
    app = web_application(Metrics(), Readiness(AsyncWebClient(token="xoxb-test")), None, route)
    head = f"POST {ALERTS_PATH}?token=s3cret HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{{".encode()
    async with running(app, "127.0.0.1", 0) as url:
        _, writer = await trickle(url, head)
        writer.close()  # gone with 499 bytes still to come
        for _ in range(100):
            if any("could not be read" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.02)
    said = [r for r in caplog.records if "alert webhook" in r.getMessage()]
    assert [r.getMessage() for r in said if "could not be read" in r.getMessage()], caplog.text
    assert not [r for r in caplog.records if r.exc_info], caplog.text


async def test_beyond_the_connection_limit_the_oldest_trickler_makes_room_for_a_real_command(
    slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PURVIEW_BOT_HTTP_MAX_CONNECTIONS", "4")
    monkeypatch.setenv("PURVIEW_BOT_HTTP_READ_TIMEOUT", "60")  # only the limit closes them here
    async with serve_http(Settings()) as url, aiohttp.ClientSession() as http:
        tricklers = []
        for _ in range(10):
            tricklers.append(await trickle(url))
            await asyncio.sleep(0.02)  # accepted in this order
        status, text = await slash_command(http, url, slack, "real")
        assert status == 200 and "sales-adls" in text
        report = await slack.wait_for("chat.postMessage", lambda c: c.has_rerun_button, timeout=20)
        assert report.ok
        for connection in tricklers[:7]:  # 10 + the command's, 4 at a time: the 7 oldest made room
            assert await closed_by_server(connection) == b""
        async with http.get(f"{url}/metrics") as resp:
            assert metric(await resp.text(), "connection_limit") >= 7
        for _, writer in tricklers[7:]:
            writer.close()


async def test_when_every_connection_is_being_answered_a_new_one_gets_503() -> None:
    """Two verified Slack requests being answered (a listener that takes its time) hold both slots: a
    third connection gets a 503 at once instead of evicting them."""
    entered, release = asyncio.Event(), asyncio.Event()
    waiting = 0

    async def authorize(
        enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token="xoxb-test")

    bolt = AsyncApp(signing_secret=SECRET, authorize=authorize, process_before_response=True)

    @bolt.command("/purview-check")
    async def slow_ack(ack: AsyncAck) -> None:
        nonlocal waiting
        waiting += 1
        if waiting == 2:
            entered.set()
        await release.wait()
        await ack("done")

    readiness = Readiness(AsyncWebClient(token="xoxb-test", base_url="http://127.0.0.1:9/"))
    limits = HttpLimits(max_connections=2)
    app = web_application(Metrics(), readiness, bolt, signing_secret=SECRET, limits=limits)
    async with running(app, "127.0.0.1", 0) as url, aiohttp.ClientSession() as http:
        request = signing.slash_command("sales-adls")
        commands = [
            asyncio.create_task(signing.post_signed(http, f"{url}{EVENTS_PATH}", request, secret=SECRET))
            for _ in range(2)
        ]
        await asyncio.wait_for(entered.wait(), 10)
        answer = await closed_by_server(await trickle(url, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        release.set()
        for command in commands:
            status, text, _ = await asyncio.wait_for(command, 10)
            assert (status, text) == (200, "done")
