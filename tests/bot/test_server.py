"""Smoke test of `serve_http`: it starts, `/healthz` and `/metrics` answer, and Slack's endpoint refuses
unsigned requests. Every address is 127.0.0.1: the sandbox for Azure, a local fake for Slack's Web API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.azure import ConfigError
from bot.metrics import Metrics
from bot.server import Readiness, running, serve_http, web_application
from bot.settings import Settings
from sandbox import Sandbox
from tests.slack import signing
from tests.slack.fake_slack import FakeSlack


@pytest.fixture
async def slack(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        monkeypatch.setenv("SLACK_SIGNING_SECRET", "test-signing-secret")
        monkeypatch.setenv("SLACK_API_URL", fake.url)
        yield fake


async def health(
    http: aiohttp.ClientSession, url: str, until: Callable[[dict[str, Any]], bool], within: float = 10
) -> tuple[int, dict[str, Any]]:
    """`/healthz` polled until its body satisfies `until` (auth.test runs in the background at start)."""
    deadline = time.monotonic() + within
    while True:
        async with http.get(f"{url}/healthz") as resp:
            status, body = resp.status, await resp.json()
        if until(body):
            return status, body
        assert time.monotonic() < deadline, f"/healthz still says {body}"
        await asyncio.sleep(0.05)


async def test_serve_http_answers_health_metrics_and_refuses_unsigned_requests(slack: FakeSlack) -> None:
    async with serve_http(Settings()) as url, aiohttp.ClientSession() as http:
        assert url.startswith("http://127.0.0.1:")
        status, healthz = await health(http, url, lambda b: b["checks"]["slack"] != "not verified yet")
        assert status == 200
        assert healthz["status"] == "ok"
        assert {"azure": "ok", "slack": "ok"}.items() <= healthz["checks"].items()
        async with http.get(f"{url}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
            assert "# TYPE purview_bot_commands_total counter" in text
            assert "# TYPE purview_bot_azure_call_seconds histogram" in text
        body = "command=%2Fpurview-check&text=sales-adls&channel_id=C111&user_id=W111"
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        async with http.post(f"{url}/slack/events", data=body, headers=headers) as resp:
            assert resp.status == 401
    assert not slack.calls_to("chat.postMessage")


async def test_healthz_names_slack_when_its_token_is_refused(slack: FakeSlack) -> None:
    slack.fail("auth.test", "invalid_auth")
    async with serve_http(Settings()) as url, aiohttp.ClientSession() as http:
        status, body = await health(http, url, lambda b: b["checks"]["slack"] != "not verified yet")
    assert status == 503
    assert body["notReady"] == ["slack"]
    assert body["checks"]["slack"] == "auth.test failed: invalid_auth"
    assert body["checks"]["azure"] == "ok"


async def test_http_mode_without_the_signing_secret_is_one_sentence(
    slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_SIGNING_SECRET")
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET must be set"):
        async with serve_http(Settings()):
            pass


async def test_the_first_command_does_not_wait_on_auth_test_which_slack_rate_limits(
    slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """auth.test runs at start, in the background: while Slack answers it 429 (it took 4.1 s on the
    first request), serve is up, the first slash command is acked and reported, and /healthz says why
    Slack is not ready."""
    monkeypatch.setenv("PURVIEW_BOT_WATCH_INTERVAL", "0")
    slack.fail("auth.test", status=429, retry_after=2)  # every time
    async with serve_http(Settings()) as url, aiohttp.ClientSession() as http:
        command = signing.slash_command("sales-adls", response_url=slack.response_url("first"))
        status, text, _ = await signing.post_signed(
            http, f"{url}/slack/events", command, secret="test-signing-secret"
        )
        assert status == 200 and "sales-adls" in text, text  # the command's own ack
        report = await slack.wait_for("chat.postMessage", lambda c: c.has_rerun_button, timeout=30)
        assert report.ok
        assert slack.calls_to("auth.test") and not slack.calls_to("auth.test", ok=True)
        status, body = await health(http, url, lambda b: b["checks"]["slack"] != "not verified yet")
    assert (status, body["checks"]["slack"]) == (503, "auth.test failed: ratelimited")


async def test_extra_checks_degrade_health_and_required_ones_fail_it(slack: FakeSlack) -> None:
    """`Readiness(..., extra=...)`: a failing extra check (the store) is a 200 "degraded" naming it and
    its reason; one that hangs is cut off; a failing required check is still a 503."""

    async def store_down() -> str:
        return "database unreachable"

    async def hangs() -> str:
        await asyncio.Event().wait()
        return "ok"

    async def broken() -> str:
        raise RuntimeError("bug")

    readiness = Readiness(
        AsyncWebClient(token="xoxb-test", base_url=slack.url), extra={"store": store_down, "queue": hangs}
    )
    readiness.add_check("webhook", broken)
    readiness.azure_open = True
    readiness.start()
    await slack.wait_for("auth.test", lambda c: c.ok)
    app = web_application(Metrics(), readiness, None)
    async with running(app, "127.0.0.1", 0) as url, aiohttp.ClientSession() as http:
        async with http.get(f"{url}/healthz") as resp:
            status, body = resp.status, await resp.json()
        assert status == 200
        assert body == {
            "status": "degraded",
            "degraded": ["queue", "store", "webhook"],
            "checks": {
                "azure": "ok",
                "slack": "ok",
                "store": "database unreachable",
                "queue": "no answer within 3 s",
                "webhook": "check failed: RuntimeError",
            },
        }
        readiness.azure_open = False
        async with http.get(f"{url}/healthz") as resp:
            assert resp.status == 503
            assert (await resp.json())["notReady"] == ["azure"]
    await readiness.close()
