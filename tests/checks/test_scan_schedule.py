"""scan-schedule: disabled / ended / overdue schedules and runs stuck behind a busy runtime."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from checks.catalogue import scan_schedule
from checks.errors import GatewayError
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


# --- what must never be a wrong `fail` (reviewer r12) --------------------------------------------------


async def test_unreadable_runs_make_an_overdue_schedule_a_warning_not_a_failure() -> None:
    world = _world(n.trigger(), [_ok("2026-11-06T02:00:00Z")])
    fake = FakeWorld(world)
    fake.fail["purview.runs:sales-adls/weekly"] = GatewayError(
        "list runs", status=403, permission="Data Reader"
    )
    [f] = await _run(world, fake)
    assert f.status is Status.WARN and "could not read the scan's runs" in f.detail
    assert "causeSince" not in f.evidence and f.evidence["runsError"]


async def test_a_trigger_without_an_enabled_state_is_only_a_warning_when_overdue() -> None:
    trigger = n.trigger()
    del trigger["properties"]["state"]
    [f] = await _run(_world(trigger, [_ok("2026-11-06T02:00:00Z")]))
    assert f.status is Status.WARN and "no Enabled state" in f.detail


async def test_a_schedule_created_after_an_old_manual_run_is_not_overdue() -> None:
    # the scan ran by hand in June; the weekly trigger was set up four days ago
    trigger = n.trigger(start="2026-11-24T02:00:00Z", modified="2026-11-24T01:00:00Z")
    trigger["properties"]["createdAt"] = "2026-11-24T01:00:00Z"
    [f] = await _run(_world(trigger, [_ok("2026-06-01T02:00:00Z")]))
    assert f.status is Status.PASS


async def test_a_trigger_changed_recently_counts_afresh() -> None:
    trigger = n.trigger(modified="2026-11-20T09:00:00Z")
    [f] = await _run(_world(trigger, [_ok("2026-10-01T02:00:00Z")]))
    assert f.status is Status.PASS


async def test_a_long_run_that_ended_recently_is_no_missed_schedule() -> None:
    # a daily scan whose last run started 5 days ago and ran until yesterday
    run = w.scan_run("Succeeded", "2026-11-27T20:00:00Z")
    run["startTime"] = "2026-11-23T02:00:00Z"
    [f] = await _run(_world(n.trigger(frequency="Day"), [run]))
    assert f.status is Status.PASS


async def test_a_run_still_in_progress_is_no_missed_schedule() -> None:
    # an hourly schedule whose run has been going for 3 h: Purview starts no other meanwhile
    run = w.scan_run("InProgress", "2026-11-28T05:00:00Z")
    run["endTime"] = None
    found = await _run(_world(n.trigger(frequency="Hour"), [run]))
    assert found[0].status is Status.PASS


async def test_a_start_time_without_offset_in_a_named_zone_may_still_be_ahead() -> None:
    # 2026-11-28T12:00 in a zone west of UTC may be after 08:00 UTC now: not started, not late
    trigger = n.trigger(frequency="Hour", start="2026-11-28T00:00:00")
    trigger["properties"]["recurrence"]["timeZone"] = "Pacific Standard Time"
    trigger["properties"]["createdAt"] = "2026-11-27T10:00:00Z"
    trigger["properties"]["lastModifiedAt"] = "2026-11-27T10:00:00Z"
    [f] = await _run(_world(trigger, []))
    assert f.status is Status.PASS
    assert scan_schedule.start_window(trigger["properties"]["recurrence"]) == (
        datetime(2026, 11, 27, 10, tzinfo=UTC),
        datetime(2026, 11, 28, 14, tzinfo=UTC),
    )


async def test_a_start_time_with_an_offset_is_exact_and_an_hourly_schedule_gone_quiet_fails() -> None:
    trigger = n.trigger(frequency="Hour", start="2026-11-28T00:00:00+00:00", modified="2026-11-27T10:00:00Z")
    trigger["properties"]["createdAt"] = "2026-11-27T10:00:00Z"
    trigger["properties"]["recurrence"]["timeZone"] = "Pacific Standard Time"
    [f] = await _run(_world(trigger, []))
    assert f.status is Status.FAIL and f.evidence["overdueSince"] == "2026-11-28T02:00:00Z"
