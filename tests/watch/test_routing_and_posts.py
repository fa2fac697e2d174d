"""Routing of automatic posts, their texts (escaped), and the per-channel pacing (with an injected clock)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.store import Watch
from checks.model import Finding, Status
from checks.sections import KEY_VAULT_ACCESS
from checks.times import parse_time
from handlers.render.watch_posts import (
    at_time,
    failure_parent,
    metadata_runs,
    storm_list,
    storm_parent,
)
from handlers.slack.watch_publisher import ChannelPacer
from handlers.watch.model import Failure
from handlers.watch.routing import Place, Route, Router, RoutesError, parse_routes
from tests.watch.conftest import shown

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
ROUTES = [
    {"channel": "C-ACCOUNT", "account": "contoso-pv"},
    {"channel": "C-SALES", "account": "contoso-pv", "collection": "sales"},
    {"channel": "C-HR", "source": "hr-sql"},
]


def test_the_most_specific_route_wins_else_the_default() -> None:
    router = Router(parse_routes(json.dumps(ROUTES)), "C-DEFAULT")
    assert router.routed(Place("contoso-pv", "sales", "sales-adls")) == "C-SALES"
    assert router.routed(Place("contoso-pv", "people", "hr-sql")) == "C-HR"
    assert router.routed(Place("contoso-pv", "finance", "finance-sql")) == "C-ACCOUNT"
    assert router.routed(Place("other-pv", "sales", "sales-adls")) == "C-DEFAULT"
    arm_id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Purview/accounts/Contoso-PV"
    assert router.routed(Place(arm_id, "SALES", "x")) == "C-SALES"
    assert Router([], None).routed(Place("contoso-pv", None, "x")) is None
    assert Router([], None).channels(Place("contoso-pv", None, "x")) == []


def test_a_watch_adds_a_channel_and_never_takes_one_from_the_routed_channel() -> None:
    """Issue 9, item 2: `/purview-check watch --source sales-adls` anywhere used to beat the configured
    route (on-call stopped hearing about it). A watch adds its channel; the routed one stays first."""
    router = Router(parse_routes(json.dumps(ROUTES)), "C-DEFAULT")
    watches = [
        Watch("C-RANDOM", "contoso-pv", source="sales-adls"),  # more specific than the sales route
        Watch("C-TEAM", "contoso-pv", collection="sales"),
        Watch("C-RANDOM", "contoso-pv"),  # the same channel twice: one post
        Watch("D-SOMEONE", "contoso-pv", source="sales-adls"),  # a direct message holds no watch
    ]
    place = Place("contoso-pv", "sales", "sales-adls")
    assert router.channels(place, watches) == ["C-SALES", "C-RANDOM", "C-TEAM"]
    assert router.routed(place) == "C-SALES"
    # a scope no route names still goes to the alert channel, and to its watchers
    assert router.channels(Place("other-pv", None, "x"), [Watch("C-W", "other-pv")]) == ["C-DEFAULT", "C-W"]
    # no route and no alert channel: only the watchers
    assert Router([], None).channels(Place("contoso-pv", None, "x"), watches[2:]) == ["C-RANDOM"]
    # a watch of the routed channel itself adds nothing
    assert router.channels(place, [Watch("C-SALES", "contoso-pv")]) == ["C-SALES"]


def test_fallback_and_on_call_channels() -> None:
    router = Router(parse_routes(json.dumps(ROUTES)), "C-DEFAULT")
    place = Place("contoso-pv", "sales", "sales-adls")
    assert router.fallback(place) == "C-DEFAULT"
    assert router.on_call(place) == {"C-SALES", "C-DEFAULT"}
    assert router.on_call(Place("contoso-pv", None, None)) == {"C-ACCOUNT", "C-DEFAULT"}
    no_default = Router(parse_routes(json.dumps(ROUTES)), None)
    assert no_default.fallback(place) == "C-SALES"  # without an alert channel: the routed one
    assert no_default.on_call(Place("other-pv", None, None)) == set()


def test_routes_from_a_file_and_their_errors(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(ROUTES[2:]))
    assert parse_routes(str(path)) == [Route("C-HR", source="hr-sql")]
    assert parse_routes("") == [] and parse_routes(None) == []
    for bad in (
        "[{]",
        '{"channel": "C1"}',
        '[{"source": "x"}]',
        '[{"channel": "C1", "sauce": "x"}]',
        '[{"channel": ""}]',
        str(tmp_path / "missing.json"),
    ):
        with pytest.raises(RoutesError):
            parse_routes(bad)


def _failure(source: str = "sales-adls", error: str = "AuthorizationPermissionMismatch") -> Failure:
    run = {"id": "r1", "status": "Failed", "endTime": "2026-11-28T07:58:01.1234567Z", "errorMessage": error}
    return Failure("contoso-pv", source, "sales", "weekly", run, ("r1",))


def test_failure_parent_names_scan_time_and_classified_error_escaped() -> None:
    cause = Finding(
        check="source-access", status=Status.FAIL, section="x", title="cannot read <!channel> blobs"
    )
    message = failure_parent(_failure(source="<!here>"), cause, NOW)
    text = message["text"]
    assert (
        "failed 2026-11-28 07:58 UTC: Purview lacks data access (AuthorizationPermissionMismatch)"
        in shown(text)
    )
    assert "<!here>" not in text and "&lt;!here&gt;" in text
    assert "<!channel>" not in json.dumps(message["blocks"])


def test_times_and_metadata() -> None:
    assert parse_time("2026-11-28T07:58:01.1234567Z") == datetime(2026, 11, 28, 7, 58, 1, 123456, tzinfo=UTC)
    assert parse_time(None) is None and parse_time("soon") is None
    assert at_time("2026-11-27T14:04:40Z", NOW) == "2026-11-27 14:04 UTC"
    meta = {"metadata": {"event_type": "purview_scan_failure", "event_payload": {"runs": ["a", "b"]}}}
    assert metadata_runs(meta) == ["a", "b"]
    assert (
        metadata_runs({"metadata": {"event_type": "purview_report", "event_payload": {"runs": ["a"]}}}) == []
    )


def test_a_big_storm_lists_every_scan_within_slack_limits() -> None:
    failures = [_failure(source=f"src-{i:03d}") for i in range(150)]
    cause = Finding(
        check="key-vault-access", status=Status.FAIL, section=KEY_VAULT_ACCESS, title="no List in kv-finance"
    )
    assert storm_parent(failures, cause, NOW)["text"].startswith(
        "🔴 *FAIL* · 150 scans failed: no List in kv-finance"
    )
    messages = storm_list(failures, NOW)
    text = "\n".join(m["text"] for m in messages)
    assert all(f"`src-{i:03d}`" in text for i in range(150))
    assert text.count("All with:") == 1
    assert all(len(m["blocks"][0]["text"]["text"]) <= 3000 for m in messages)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


async def test_pacing_is_one_message_per_second_per_channel() -> None:
    clock = FakeClock()
    pacer = ChannelPacer(interval=1.0, clock=clock, sleep=clock.sleep)
    sent: list[tuple[str, float]] = []

    async def send(channel: str) -> None:
        await pacer.wait(channel)
        sent.append((channel, clock.now))

    await asyncio.gather(send("C1"), send("C1"), send("C2"), send("C1"))
    assert [t for c, t in sent if c == "C1"] == [100.0, 101.0, 102.0]
    assert clock.slept == [1.0, 1.0]  # only the second and third C1 messages waited; C2 did not
    clock.now += 5  # idle: no waiting afterwards
    before = len(clock.slept)
    await send("C1")
    assert len(clock.slept) == before
