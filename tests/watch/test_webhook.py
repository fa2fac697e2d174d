"""`POST /alerts/azure-monitor` through the real server: `bot.server.web_application` started by
`bot.server.running` (as `serve` runs it: no access log, so the token in the query string is never logged)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from aiohttp import ClientSession
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics
from bot.server import Readiness, running, web_application
from handlers.background import Background
from handlers.watch.alerts import AlertRun
from handlers.watch.webhook import ALERTS_PATH, alert_route
from tests.watch.alert_payloads import PURVIEW_ID, RUN_ID, dims, purview_v2, sample, scan_status_event

SECRET = "s3cret-Token_value"
URL = f"{ALERTS_PATH}?token={SECRET}"


class Intake:
    """The watcher's side: records what it is handed, optionally failing."""

    def __init__(self, error: Exception | None = None) -> None:
        self.batches: list[list[AlertRun]] = []
        self.error = error
        self.called = asyncio.Event()

    async def runs_reported(self, runs: Sequence[AlertRun]) -> None:
        self.batches.append(list(runs))
        self.called.set()
        if self.error is not None:
            raise self.error


class Served:
    def __init__(self, client: ClientSession, intake: Intake, metrics: Metrics, background: Background):
        self.client, self.intake, self.metrics, self.background = client, intake, metrics, background

    def count(self, result: str) -> float:
        value = self.metrics.registry.get_sample_value("purview_bot_alerts_total", {"result": result})
        return value or 0.0


async def serve(intake: Intake, **options: Any) -> AsyncIterator[Served]:
    metrics, background = Metrics(), Background()
    route = alert_route(SECRET, intake, metrics, background=background, **options)
    app = web_application(metrics, Readiness(AsyncWebClient(token="xoxb-test")), None, route)
    async with running(app, "127.0.0.1", 0) as url, ClientSession(base_url=url) as client:
        yield Served(client, intake, metrics, background)
    await background.drain(1)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async for s in serve(Intake()):
        yield s


@pytest.fixture
async def failing() -> AsyncIterator[Served]:
    async for s in serve(Intake(RuntimeError("store is down"))):
        yield s


def v2_alert() -> dict[str, Any]:
    return purview_v2(
        dims(DataSourceName="sales-adls", ScanName="weekly", ScanResultId=RUN_ID, _ResourceId=PURVIEW_ID)
    )


async def test_good_token_answers_202_and_hands_the_runs_to_the_intake(served: Served) -> None:
    resp = await served.client.post(URL, json=v2_alert())
    assert resp.status == 202
    assert await resp.json() == {"accepted": 1}
    await asyncio.wait_for(served.intake.called.wait(), 2)
    assert served.intake.batches == [[AlertRun("contoso-pv", "sales-adls", "weekly", RUN_ID, None, None)]]
    assert served.count("accepted") == 1


async def test_a_raw_event_list_is_accepted(served: Served) -> None:
    resp = await served.client.post(URL, json=[scan_status_event(), scan_status_event()])
    assert resp.status == 202 and await resp.json() == {"accepted": 1}  # the same run twice: once
    await asyncio.wait_for(served.intake.called.wait(), 2)
    assert [r.run_id for r in served.intake.batches[0]] == [RUN_ID]


@pytest.mark.parametrize("query", ["", "?token=", "?token=wrong", f"?token={SECRET}x", f"?Token={SECRET}"])
async def test_a_bad_or_missing_token_is_401_and_the_intake_is_not_called(
    served: Served, query: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    resp = await served.client.post(f"{ALERTS_PATH}{query}", json=v2_alert())
    assert resp.status == 401
    assert await resp.json() == {"error": "unauthorized"}
    await asyncio.sleep(0.05)
    assert served.intake.batches == []
    assert served.count("unauthorized") == 1
    assert "alert webhook: refused a request" in caplog.text
    assert SECRET not in caplog.text


async def test_the_token_never_reaches_the_logs(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for body in (json.dumps(v2_alert()), "{not json", json.dumps({"hello": 1})):
        await served.client.post(URL, data=body)
    await asyncio.wait_for(served.intake.called.wait(), 2)
    assert caplog.records
    assert SECRET not in caplog.text
    assert all(SECRET not in str(r.args) for r in caplog.records)


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe\xfa", b"", b"[" * 100_000])
async def test_a_body_that_is_not_json_is_400(served: Served, body: bytes) -> None:
    resp = await served.client.post(URL, data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["error"] == "body is not JSON"
    assert served.count("malformed") == 1 and served.intake.batches == []


async def test_a_malformed_alert_is_400_naming_the_field(served: Served) -> None:
    resp = await served.client.post(URL, json={"schemaId": "azureMonitorCommonAlertSchema", "data": []})
    assert resp.status == 400
    assert await resp.json() == {"error": "data: expected an object, got a list"}
    assert served.count("malformed") == 1


async def test_an_alert_naming_no_scan_is_ignored_with_its_reason(served: Served) -> None:
    resp = await served.client.post(URL, json=sample("common_schema_sample_metric.json"))
    assert resp.status == 202
    assert await resp.json() == {"ignored": "alert 'WCUS-R2-Gen2' resolved: nothing to post"}
    resp = await served.client.post(URL, json=sample("log_search_alert_common_schema_LogAlertsV2.json"))
    assert resp.status == 202 and "names no scan" in (await resp.json())["ignored"]
    assert served.count("ignored") == 2 and served.intake.batches == []


async def test_a_huge_body_is_413(served: Served) -> None:
    huge = b'{"pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    resp = await served.client.post(URL, data=huge)
    assert resp.status == 413
    assert served.count("malformed") == 1


async def test_a_huge_chunked_body_is_413(served: Served) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"pad": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    resp = await served.client.post(URL, data=chunks())
    assert resp.status == 413
    assert served.intake.batches == []


async def test_the_limit_is_the_routes_own() -> None:
    async for s in serve(Intake(), max_body_bytes=100):
        assert (await s.client.post(URL, json=v2_alert())).status == 413
        assert (await s.client.post(URL, json=[])).status == 202


async def test_an_intake_that_raises_still_gets_202_and_is_logged(
    failing: Served, caplog: pytest.LogCaptureFixture
) -> None:
    resp = await failing.client.post(URL, json=v2_alert())
    assert resp.status == 202
    await asyncio.wait_for(failing.intake.called.wait(), 2)
    await failing.background.drain(1)
    assert "handing 1 run(s) to the watcher failed (sales-adls/weekly)" in caplog.text
    assert "store is down" in caplog.text
    resp = await failing.client.post(URL, json=v2_alert())  # and the webhook goes on answering
    assert resp.status == 202


async def test_the_answer_does_not_wait_for_the_intake() -> None:
    release = asyncio.Event()

    class Slow(Intake):
        async def runs_reported(self, runs: Sequence[AlertRun]) -> None:
            await super().runs_reported(runs)
            await release.wait()

    async for s in serve(Slow()):
        resp = await asyncio.wait_for(s.client.post(URL, json=v2_alert()), 2)
        assert resp.status == 202
        await asyncio.wait_for(s.intake.called.wait(), 2)
        assert s.background.running == 1  # referenced while it runs
        release.set()


FUZZ: list[bytes] = [
    b"null",
    b"0",
    b"[]",
    b"{}",
    b"[null]",
    b'"x"',
    b"NaN",
    b'{"records": 5}',
    b'{"records": [{}]}',
    b'{"category": "ScanStatusLogEvent"}',
    b'{"category": "ScanStatusLogEvent", "properties": {"scanName": [1]}}',
    b'{"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {}}}',
    b'{"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {}, "alertContext": '
    b'{"SearchResults": 1}}}',
    b'{"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {}, "alertContext": '
    b'{"SearchResults": {"tables": [{"columns": [{"name": 1}], "rows": [[[]]]}]}}}}',
    b'{"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {"alertTargetIDs": [{}]}}}',
    b'{"schemaId": 7}',
    b"\x00\x01",
    '{"a": "\ud800"}'.encode("utf-8", "surrogatepass"),
    b'{"a": 1e999999}',
    b"{" * 5000,
]


async def test_no_body_shape_gets_a_500(served: Served) -> None:
    for body in FUZZ:
        resp = await served.client.post(URL, data=body)
        assert resp.status in (202, 400), (body[:60], resp.status)
    total = sum(served.count(r) for r in ("accepted", "ignored", "malformed", "unauthorized"))
    assert total == len(FUZZ)


async def test_an_unexpected_error_is_a_400_not_a_500(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_: object) -> None:
        raise TypeError("a bug")

    monkeypatch.setattr("handlers.watch.webhook.inspect_alert", broken)
    resp = await served.client.post(URL, json=v2_alert())
    assert resp.status == 400 and await resp.json() == {"error": "bad request"}
    assert served.count("malformed") == 1


async def test_only_post_is_served(served: Served) -> None:
    assert (await served.client.get(URL)).status == 405


async def test_the_route_is_absent_without_a_handler() -> None:
    app = web_application(Metrics(), Readiness(AsyncWebClient(token="xoxb-test")), None)
    async with running(app, "127.0.0.1", 0) as url, ClientSession(base_url=url) as client:
        assert (await client.post(URL, json=v2_alert())).status == 404


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="PURVIEW_BOT_WEBHOOK_SECRET"):
        alert_route("", Intake(), Metrics())


async def test_metrics_text_names_the_results(served: Served) -> None:
    await served.client.post(URL, json=v2_alert())
    await served.client.post(ALERTS_PATH, json=v2_alert())
    text = served.metrics.render().decode()
    assert "# TYPE purview_bot_alerts_total counter" in text
    assert 'purview_bot_alerts_total{result="accepted"} 1.0' in text
    assert 'purview_bot_alerts_total{result="unauthorized"} 1.0' in text
