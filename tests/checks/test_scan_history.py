"""scan-history: status per scan, failing streak, last success, classification of the failing run."""

from __future__ import annotations

from checks import sections as s
from checks.catalogue import scan_history
from checks.errors import GatewayError
from checks.model import Finding, Status
from tests.checks import worlds as w
from tests.fakes import FakeWorld

MISMATCH = "Status: 403. ErrorCode: AuthorizationPermissionMismatch"


def _world(runs: list[dict[str, object]]) -> dict[str, object]:
    world = w.adls_world()
    w.pv(world)["runs"]["sales-adls/weekly"] = runs
    return world


async def _run(world: dict[str, object]) -> list[Finding]:
    target = await FakeWorld(world).target("sales-adls")
    return await scan_history.run(target)


async def test_failing_after_success_is_classified() -> None:
    runs = [
        w.scan_run("Failed", "2026-11-28T07:14:00Z", error_message=MISMATCH),
        w.scan_run("Failed", "2026-11-21T07:10:00Z", error_message=MISMATCH),
        w.scan_run("Succeeded", "2026-11-14T07:09:00Z"),
        w.scan_run("Failed", "2026-11-07T07:09:00Z"),
    ]
    [f] = await _run(_world(runs))
    assert f.status is Status.FAIL and f.scan == "weekly"
    assert f.section == s.SOURCE_ACCESS
    assert f.title == (
        "Scan weekly of sales-adls failed at 2026-11-28 07:14 UTC: "
        "Purview lacks data access (AuthorizationPermissionMismatch)"
    )
    assert f.evidence["failingSince"] == "2026-11-21 07:10 UTC"
    assert f.evidence["consecutiveFailures"] == 2
    assert f.evidence["lastSuccess"]["endTime"] == "2026-11-14T07:09:00Z"
    assert f.evidence["classification"] == {
        "section": s.SOURCE_ACCESS,
        "reason": "Purview lacks data access",
        "matched": "AuthorizationPermissionMismatch",
        "cause": "storage-data-permission",
    }
    assert f.evidence["error"] == MISMATCH
    assert f.evidence["causeSince"] == "2026-11-21T07:10:00Z"  # the first failure of the streak


async def test_unsorted_runs_are_ordered_by_time_and_unfinished_ones_skipped() -> None:
    runs = [
        w.scan_run("Succeeded", "2026-11-14T07:09:00Z"),
        w.scan_run("InProgress", "2026-11-28T07:50:00Z"),
        w.scan_run("Failed", "2026-11-28T07:14:00Z", error_message="Error number: 47073"),
    ]
    [f] = await _run(_world(runs))
    assert f.status is Status.FAIL and f.section == s.PRIVATE_LINK
    assert f.evidence["lastRun"]["endTime"] == "2026-11-28T07:14:00Z"
    assert "1 newer run is not finished" in f.detail


async def test_unclassified_failure_points_at_scans_no_longer_run() -> None:
    [f] = await _run(_world([w.scan_run("Failed", "2026-11-28T07:14:00Z", error_message="Boom.")]))
    assert f.status is Status.FAIL and f.section == s.SCANS_NO_LONGER_RUN
    assert f.evidence["classification"] is None
    assert "No successful run" in f.detail


async def test_completed_with_exceptions_warns() -> None:
    [f] = await _run(_world([w.scan_run("CompletedWithExceptions", "2026-11-28T07:14:00Z")]))
    assert f.status is Status.WARN


async def test_success_passes_with_context_section() -> None:
    [f] = await _run(_world([w.scan_run("Succeeded", "2026-11-28T07:14:00Z")]))
    assert f.status is Status.PASS and f.section == s.SCANS_NO_LONGER_RUN
    assert f.evidence["consecutiveFailures"] == 0 and f.evidence["error"] is None


async def test_never_run_is_skipped() -> None:
    [f] = await _run(_world([]))
    assert f.status is Status.SKIPPED and f.scan == "weekly"


async def test_no_scans_is_skipped() -> None:
    world = w.adls_world()
    w.pv(world)["scans"]["sales-adls"] = []
    [f] = await _run(world)
    assert f.status is Status.SKIPPED and f.scan is None


async def test_gateway_error_is_unknown_per_scan() -> None:
    world = w.adls_world()
    w.pv(world)["scans"]["sales-adls"].append(w.scan("daily", "AdlsGen2Msi"))
    w.pv(world)["runs"]["sales-adls/daily"] = [w.scan_run("Succeeded", "2026-11-28T07:14:00Z")]
    fake = FakeWorld(world)
    fake.fail["purview.runs:sales-adls/weekly"] = GatewayError(
        "GET Purview scan runs", status=403, permission="Data Source Admin on the collection"
    )
    findings = await scan_history.run(await fake.target("sales-adls"))
    by_scan = {f.scan: f for f in findings}
    assert by_scan["weekly"].status is Status.UNKNOWN
    assert "Data Source Admin" in by_scan["weekly"].detail
    assert by_scan["daily"].status is Status.PASS


async def test_naive_and_aware_times_compare() -> None:
    runs = [
        w.scan_run("Succeeded", "2026-11-20T07:14:00"),
        w.scan_run("Failed", "2026-11-28T07:14:00Z", error_message="ErrorCode: AuthorizationFailure"),
    ]
    [f] = await _run(_world(runs))
    assert f.status is Status.FAIL and f.evidence["lastSuccess"]["endTime"] == "2026-11-20T07:14:00"


async def test_a_pass_carries_no_cause_since() -> None:
    runs = [w.scan_run("Succeeded", "2026-11-28T07:14:00Z"), w.scan_run("Failed", "2026-11-21T07:10:00Z")]
    [f] = await _run(_world(runs))
    assert f.status is Status.PASS and "causeSince" not in f.evidence
    assert "fail" not in f.title.lower()


INTERNAL = "Internal system error. Please contact support with correlationId:1c2d-33 System Error."


async def test_internal_error_on_the_azure_ir_is_not_blamed_on_a_self_hosted_runtime() -> None:
    [f] = await _run(_world([w.scan_run("Failed", "2026-11-28T07:14:00Z", error_message=INTERNAL)]))
    assert f.status is Status.FAIL and f.evidence["runtime"] == "azure"
    assert f.evidence["classification"]["cause"] == "purview-internal-error"
    assert "self-hosted integration runtime" not in f.title


async def test_internal_error_on_a_named_runtime_reads_the_runtime_kind_once() -> None:
    world = _world([w.scan_run("Failed", "2026-11-28T07:14:00Z", error_message=INTERNAL)])
    w.pv(world)["scans"]["sales-adls"] = [w.scan("weekly", "AdlsGen2Msi", ir="shir-01")]
    w.pv(world)["integrationRuntimes"].append(w.integration_runtime("shir-01", "SelfHosted"))
    fake = FakeWorld(world)
    [f] = await scan_history.run(await fake.target("sales-adls"))
    assert f.evidence["runtime"] == "self-hosted"
    assert f.evidence["classification"]["cause"] == "shir-cannot-reach-purview"
    assert fake.calls["purview.ir:shir-01"] == 1


async def test_a_succeeding_scan_does_not_read_its_runtime() -> None:
    world = _world([w.scan_run("Succeeded", "2026-11-28T07:14:00Z")])
    w.pv(world)["scans"]["sales-adls"] = [w.scan("weekly", "AdlsGen2Msi", ir="shir-01")]
    fake = FakeWorld(world)
    [f] = await scan_history.run(await fake.target("sales-adls"))
    assert f.status is Status.PASS and fake.calls["purview.ir:shir-01"] == 0
