"""scan-schedule: disabled / ended / overdue schedules and runs stuck behind a busy runtime."""

from __future__ import annotations

from typing import Any

from checks.catalogue import scan_schedule
from checks.model import Finding, Status
from checks.run_evidence import overrule
from tests.checks import net_worlds as n
from tests.checks import worlds as w
from tests.fakes import NOW, FakeWorld


def _world(trigger: dict[str, Any] | None, runs: list[dict[str, Any]]) -> dict[str, Any]:
    world = w.adls_world()
    w.pv(world)["runs"]["sales-adls/weekly"] = runs
    if trigger is not None:
        w.pv(world)["triggers"] = {"sales-adls/weekly": trigger}
    return world


async def _run(world: dict[str, Any], fake: FakeWorld | None = None) -> list[Finding]:
    return await scan_schedule.run(await (fake or FakeWorld(world)).target("sales-adls"))


def _ok(end: str) -> dict[str, Any]:
    return w.scan_run("Succeeded", end)


async def test_a_scan_without_schedule_is_skipped() -> None:
    [f] = await _run(_world(None, [_ok("2026-11-27T02:00:00Z")]))
    assert f.status is Status.SKIPPED and "no schedule" in f.title


async def test_disabled_trigger_warns_with_the_portal_step() -> None:
    [f] = await _run(_world(n.trigger("Disabled"), [_ok("2026-10-01T02:00:00Z")]))
    assert f.status is Status.WARN and "disabled" in f.title
    assert f.fix[0].startswith("Purview portal (https://web.purview.azure.com)")
    assert f.evidence["trigger"]["state"] == "Disabled"


async def test_enabled_weekly_schedule_without_a_run_for_three_weeks_fails_and_survives_the_old_success() -> (
    None
):
    runs = [_ok("2026-11-06T02:00:00Z")]
    [f] = await _run(_world(n.trigger(), runs))
    assert f.status is Status.FAIL and "has not run for" in f.title
    assert f.evidence["overdueSince"] == "2026-11-20T02:00:00Z"
    [kept] = overrule([f], {"weekly": runs})  # the success predates the moment it became overdue
    assert kept.status is Status.FAIL


async def test_last_scheduled_counts_as_a_run() -> None:
    trigger = n.trigger(last_scheduled="2026-11-23T02:00:00Z")
    [f] = await _run(_world(trigger, [_ok("2026-11-06T02:00:00Z")]))
    assert f.status is Status.PASS


async def test_weekly_schedule_that_ran_recently_passes() -> None:
    [f] = await _run(_world(n.trigger(), [_ok("2026-11-23T02:00:00Z")]))
    assert f.status is Status.PASS and "runs on schedule" in f.title


async def test_a_monthly_schedule_is_not_late_after_five_weeks() -> None:
    [f] = await _run(_world(n.trigger(frequency="Month"), [_ok("2026-10-24T02:00:00Z")]))
    assert f.status is Status.PASS


async def test_ended_schedule_warns() -> None:
    [f] = await _run(_world(n.trigger(end="2026-11-01T00:00:00Z"), [_ok("2026-10-26T02:00:00Z")]))
    assert f.status is Status.WARN and "ended" in f.title


async def test_a_run_queued_for_hours_on_a_saturated_runtime_warns_naming_the_load() -> None:
    world = _world(n.trigger(), [w.scan_run("Queued", "2026-11-28T02:00:00Z"), _ok("2026-11-21T02:00:00Z")])
    n.on_shir(world)
    status = n.shir_status(("node-1", 4, 4), ("node-2", 0, 4))
    status["properties"]["typeProperties"]["nodes"][1]["status"] = "Offline"  # takes no jobs
    w.pv(world)["integrationRuntimeStatus"][n.SHIR] = status
    found = await _run(world)
    stuck = [f for f in found if "queued" in f.title]
    assert [f.status for f in found] == [Status.PASS, Status.WARN] and stuck
    assert "concurrentJobsLimit" in stuck[0].detail
    assert stuck[0].evidence["runtimeLoad"]["saturated"] is True


async def test_a_runtime_status_without_running_jobs_says_it_cannot_tell() -> None:
    world = _world(None, [w.scan_run("Queued", "2026-11-28T01:00:00Z")])
    n.on_shir(world)
    w.pv(world)["integrationRuntimeStatus"][n.SHIR] = n.shir_status(("node-1", None, 4))
    found = await _run(world)
    [stuck] = [f for f in found if f.status is Status.WARN]
    assert stuck.evidence["runtimeLoad"]["measured"] is False and "does not show" in stuck.detail


async def test_a_run_in_progress_for_a_few_hours_is_not_stuck() -> None:
    start = "2026-11-28T03:00:00Z"
    assert NOW.hour == 8
    [f] = await _run(_world(n.trigger(), [w.scan_run("InProgress", start), _ok("2026-11-21T02:00:00Z")]))
    assert f.status is Status.PASS


async def test_the_trigger_is_read_once_per_scan() -> None:
    world = _world(n.trigger(), [_ok("2026-11-23T02:00:00Z")])
    fake = FakeWorld(world)
    target = await fake.target("sales-adls")
    await scan_schedule.run(target)
    await scan_schedule.run(target)
    assert fake.calls["purview.trigger:sales-adls/weekly"] == 1
