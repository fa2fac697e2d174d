"""The process tests' own tools: the generated worlds and the slow fake Slack's history, checked first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import yaml
from slack_sdk.web.async_client import AsyncWebClient

from sandbox import Sandbox, load_world
from sandbox.generate import ACCOUNT, failing_runs, generated_world, main
from tests.process.harness import SlowSlack, publish_run, withhold_newest_runs
from tests.slack.fake_slack import Call

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def test_generated_world_shape_and_failures() -> None:
    raw = generated_world(120, 3, 7, seed=3, now=NOW)
    world = load_world(raw, rebase_to=None)
    account = world.purview[ACCOUNT]
    assert world.page_size == 100
    assert len(account.data_sources) == 120
    assert sum(len(s) for s in account.scans.values()) == 360
    failing = failing_runs(raw)
    assert len(failing) == 7
    assert len({key.split("/")[0] for key in failing.values()}) == 7  # one failing scan per source
    for key in failing.values():
        newest, *older = account.runs[key]
        assert newest["status"] == "Failed" and "ErrorCode: Authorization" in newest["errorMessage"]
        assert all(r["status"] == "Succeeded" for r in older)
        end = datetime.fromisoformat(newest["endTime"].replace("Z", "+00:00"))
        assert NOW - timedelta(hours=24) < end < NOW
    assert generated_world(120, 3, 7, seed=3, now=NOW) == raw


def test_more_failures_than_sources_share_a_source() -> None:
    failing = failing_runs(generated_world(4, 3, 6, now=NOW))
    assert len(failing) == 6 and len({k.split("/")[0] for k in failing.values()}) == 4


def test_command_line_writes_a_loadable_world(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["5", "2", "--failing", "2"]) == 0
    out = capsys.readouterr().out
    assert "&id" not in out  # written in full, no YAML aliases
    assert len(failing_runs(yaml.safe_load(out))) == 2


async def test_a_failed_run_appears_at_runtime() -> None:
    raw = generated_world(3, 1, 1, now=NOW)
    key = next(iter(failing_runs(raw).values()))
    held = withhold_newest_runs(raw, [key])
    async with Sandbox(load_world(raw)) as sb:
        assert load_world(raw).purview[ACCOUNT].runs[key][0]["status"] == "Succeeded"
        publish_run(sb, key, held[key])
        assert sb.world.purview[ACCOUNT].runs[key][0]["status"] == "Failed"


async def test_history_returns_top_level_messages_with_metadata_on_request() -> None:
    async with SlowSlack(post_delay=0.05) as slack, aiohttp.ClientSession() as session:
        client = AsyncWebClient(token="xoxb-t", base_url=slack.url, session=session)
        meta = {"event_type": "purview_scan_failed", "event_payload": {"runs": ["run-1"]}}
        parent = await client.chat_postMessage(channel="C1", text="failed", metadata=meta)
        await client.chat_postMessage(channel="C1", text="report", thread_ts=parent["ts"])
        await client.chat_postMessage(channel="C2", text="elsewhere")
        plain = await client.conversations_history(channel="C1", limit=10)
        assert [m["text"] for m in plain["messages"]] == ["failed"]
        assert "metadata" not in plain["messages"][0]
        full = await client.conversations_history(channel="C1", include_all_metadata=True)
        assert full["messages"][0]["metadata"]["event_payload"]["runs"] == ["run-1"]
        seen: list[str] = []

        async def hook(call: Call) -> None:
            seen.append("posted")

        slack.on_post = hook
        await client.chat_postMessage(channel="C1", text="x")
        assert seen == ["posted"]
