"""Smoke test of `serve_http`: it starts, `/healthz` and `/metrics` answer, and Slack's endpoint refuses
unsigned requests. Every address is 127.0.0.1: the sandbox for Azure, a local fake for Slack's Web API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.azure import ConfigError
from bot.server import serve_http
from bot.settings import Settings
from sandbox import Sandbox
from tests.slack.fake_slack import FakeSlack


@pytest.fixture
async def slack(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        monkeypatch.setenv("SLACK_SIGNING_SECRET", "test-signing-secret")
        monkeypatch.setenv("SLACK_API_URL", fake.url)
        yield fake


async def test_serve_http_answers_health_metrics_and_refuses_unsigned_requests(slack: FakeSlack) -> None:
    async with serve_http(Settings()) as url, aiohttp.ClientSession() as http:
        assert url.startswith("http://127.0.0.1:")
        async with http.get(f"{url}/healthz") as resp:
            assert resp.status == 200
            assert await resp.json() == {"status": "ok", "checks": {"azure": "ok", "slack": "ok"}}
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
        async with http.get(f"{url}/healthz") as resp:
            assert resp.status == 503
            body = await resp.json()
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
