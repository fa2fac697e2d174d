"""Issue 9, items 8 and 12, through the real server (`bot.server.web_application` on a port) and the real
watcher: the webhook never acknowledges runs it would drop because the database is down (503 with
`Retry-After`, `/healthz` degraded; runs acknowledged just before it went away are kept and handed over
once it answers), and one payload naming 1,500 runs hands over at most `max_runs`, read concurrently
within the watcher's bound instead of two sequential reads per run under the account lock."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import ClientSession
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics
from bot.server import Readiness, running, web_application
from bot.store import ResilientStore, StoreUnavailable
from bot.watch_main import store_check
from handlers.background import Background
from handlers.watch.alerts import AlertRun
from handlers.watch.webhook import ALERTS_PATH, Unavailable, alert_route
from sandbox import RecordedRequest
from tests.watch.alert_payloads import PURVIEW_ID
from tests.watch.conftest import ACCOUNT, Rig, RigFactory

SECRET = "alert-limits-secret"
URL = f"{ALERTS_PATH}?token={SECRET}"
CONCURRENCY = 4
LATENCY_MS = 30


@asynccontextmanager
async def webhook(
    intake: Any,
    *,
    unavailable: Unavailable | None = None,
    store: ResilientStore | None = None,
    max_runs: int = 100,
    slack_url: str | None = None,
) -> AsyncIterator[tuple[ClientSession, Background]]:
    background = Background()
    route = alert_route(
        SECRET, intake, Metrics(), background=background, max_runs=max_runs, unavailable=unavailable
    )
    slack = AsyncWebClient(token="xoxb-test", base_url=slack_url) if slack_url else AsyncWebClient()
    readiness = Readiness(slack)
    readiness.azure_open = True
    if store is not None:
        readiness.add_check("store", store_check(store))
    app = web_application(Metrics(), readiness, None, route)
    try:
        async with running(app, "127.0.0.1", 0) as url, ClientSession(base_url=url) as client:
            yield client, background
    finally:
        await background.drain(5)
        await readiness.close()


def records(r: Rig, count: int) -> list[dict[str, Any]]:
    """`count` ScanStatusLogEvent records naming the account's scans in turn, each with its own run id."""
    account = r.sandbox.world.purview[ACCOUNT]
    scans = [
        (str(ds["name"]), str(s["name"])) for ds in account.data_sources for s in account.scans[ds["name"]]
    ]
    return [
        {
            "category": "ScanStatusLogEvent",
            "resultType": "Failed",
            "resourceId": PURVIEW_ID,
            "properties": {
                "dataSourceName": scans[i % len(scans)][0],
                "scanName": scans[i % len(scans)][1],
                "scanResultId": str(uuid.uuid4()),
            },
        }
        for i in range(count)
    ]


def most_in_flight(requests: Sequence[RecordedRequest]) -> int:
    edges = sorted([(q.started, 1) for q in requests] + [(q.started + q.duration, -1) for q in requests])
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


async def test_a_payload_naming_1500_runs_is_capped_and_read_concurrently_within_the_bound(
    rig: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with rig() as r:
        watcher = r.watcher(concurrency=CONCURRENCY)
        r.sandbox.latency_ms = LATENCY_MS
        scans = r.scan_count
        async with webhook(watcher) as (client, background):
            r.sandbox.requests.clear()
            resp = await client.post(URL, json=records(r, 1500))
            assert resp.status == 202
            assert await resp.json() == {"accepted": 100, "dropped": 1400}
            # before: 2,700 reads one after the other (81 s at 30 ms); now a few rounds of reads
            await background.drain(20)  # what is not done by then is cancelled (and fails below)
        reads = [q for q in r.sandbox.requests if q.host_area == "purview"]
        assert len(reads) <= 2 * min(100, scans), f"{len(reads)} Purview reads for 100 runs"
        assert 2 <= most_in_flight(reads) <= CONCURRENCY
    assert "a payload named 1500 runs: the first 100 are taken, 1400 dropped" in caplog.text


async def healthz(client: ClientSession) -> dict[str, Any]:
    """`/healthz` once Slack's auth.test (run in the background) has answered: its code and body."""
    async with asyncio.timeout(10):
        while True:
            async with client.get("/healthz") as resp:
                body: dict[str, Any] = await resp.json()
            if body["checks"].get("slack") == "ok":
                return {"code": resp.status, **body}
            await asyncio.sleep(0.05)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_webhook_answers_503_while_the_database_is_down(
    rig: RigFactory, closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: 202, then the runs were dropped (lost for good with the watcher off)."""
    store = ResilientStore(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port}/pv", timeout=1)
    await store.start()
    try:
        assert store.problem == "unavailable: connection refused"
        async with rig() as r:
            hooked = r.watcher(store=store)
            hook = webhook(hooked, unavailable=lambda: store.problem, store=store, slack_url=r.slack.url)
            async with hook as (client, _):
                resp = await client.post(URL, json=records(r, 3))
                assert resp.status == 503
                assert resp.headers["Retry-After"] == "60"
                assert await resp.json() == {"error": "the database is unavailable; retry later"}
                body = await healthz(client)
                assert body["code"] == 200  # degraded, not down: slash commands still work
                assert body["status"] == "degraded" and body["degraded"] == ["store"]
                assert body["checks"]["store"] == "database unavailable: connection refused"
                assert str(closed_port) not in str(body)  # no host or port on a public endpoint
            assert r.slack.calls_to("chat.postMessage") == []
    finally:
        await store.close()
    assert "3 run(s) refused with 503" in caplog.text


class FlakyIntake:
    """The watcher's side when the database goes away after the 202: StoreUnavailable, then it answers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.delivered: list[list[AlertRun]] = []
        self.done = asyncio.Event()

    async def runs_reported(self, runs: Sequence[AlertRun]) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("the database is unavailable: connection refused")
        self.delivered.append(list(runs))
        self.done.set()


async def test_runs_acknowledged_before_the_database_went_away_are_handed_over_when_it_is_back(
    rig: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    intake = FlakyIntake(failures=2)
    async with rig() as r, webhook(intake, unavailable=lambda: None) as (client, _):
        sent = records(r, 2)
        resp = await client.post(URL, json=sent)
        assert resp.status == 202  # the database answered when the request came
        async with asyncio.timeout(15):
            await intake.done.wait()
    assert [[run.run_id for run in batch] for batch in intake.delivered] == [
        [record["properties"]["scanResultId"] for record in sent]
    ]
    assert "2 run(s) kept until it answers" in caplog.text
    assert "2 kept run(s) handed over to the watcher" in caplog.text
