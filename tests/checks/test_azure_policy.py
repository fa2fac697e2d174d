"""azure-policy: non-compliant deny states on Purview's managed storage and the source's storage."""

from __future__ import annotations

from typing import Any

from checks import sections as s
from checks.catalogue import azure_policy
from checks.errors import GatewayError
from checks.model import Finding, Status
from tests.checks import worlds as w
from tests.fakes import FakeWorld

MANAGED_ID = (
    f"{w.SUB_ID}/resourceGroups/managed-rg-pv/providers/Microsoft.Storage/storageAccounts/scanwesteurope"
)
ASSIGNMENT_ID = f"{w.SUB_ID}/providers/Microsoft.Authorization/policyAssignments/deny-public-storage"
DEFINITION_ID = "/providers/Microsoft.Authorization/policyDefinitions/b2982f36-99f2-4db5-8eff-283140c09693"


def _state(resource_id: str, assignment: str = "deny-public-storage", **extra: Any) -> dict[str, Any]:
    return {
        "resourceId": resource_id,
        "policyAssignmentId": f"{w.SUB_ID}/providers/Microsoft.Authorization/policyAssignments/{assignment}",
        "policyAssignmentName": assignment,
        "policyDefinitionId": DEFINITION_ID,
        "policyDefinitionName": "b2982f36-99f2-4db5-8eff-283140c09693",
        "policyDefinitionAction": "deny",
        "complianceState": "NonCompliant",
        "timestamp": "2026-11-27T10:00:00Z",
        **extra,
    }


DENIED = (
    "Failed to prepare the ingestion storage: Resource 'scanwesteurope' was disallowed by policy. "
    "(Code: RequestDisallowedByPolicy)"
)


def _world(
    managed: str | None = MANAGED_ID, *, ingestion: str | None = None, adls: bool = False, denied: bool = True
) -> dict[str, Any]:
    """A source whose scan's latest run was denied by a policy (unless `denied` is False)."""
    world = w.adls_world() if adls else w.sql_world()
    if denied:
        source, scan = ("sales-adls", "weekly") if adls else ("sales-sql", "nightly")
        w.pv(world)["runs"][f"{source}/{scan}"] = [
            w.scan_run("Failed", "2026-11-27T22:00:00Z", error_message=DENIED)
        ]
    props = world["resources"][0]["properties"]
    if managed is not None:
        props["managedResources"] = {"storageAccount": managed}
    if ingestion is not None:
        props["ingestionStorage"] = {"id": ingestion}
    return world


async def _run(
    world: dict[str, Any], fake: FakeWorld | None = None, source: str = "sales-sql"
) -> list[Finding]:
    fake = fake or FakeWorld(world)
    return await azure_policy.run(await fake.target(source))


async def test_deny_on_managed_storage_fails_with_exemption_fix() -> None:
    world = _world()
    world["policyStates"].append(_state(MANAGED_ID))
    [f] = await _run(world)
    assert f.status is Status.FAIL and f.section == s.SCANS_NO_LONGER_RUN and f.scan is None
    assert f.title == (
        "Azure Policy deny-public-storage denies updates to Purview's managed storage account scanwesteurope"
    )
    assert ASSIGNMENT_ID in f.detail and "b2982f36-99f2-4db5-8eff-283140c09693" in f.detail
    assert "tags['resourceBypass']" in f.detail and "exception tag" in f.detail
    assert f.fix == [
        f"az policy exemption create --name purview-managed-storage --policy-assignment {ASSIGNMENT_ID} "
        f"--scope {MANAGED_ID} --exemption-category Waiver"
    ]
    assert f.evidence["resourceId"] == MANAGED_ID and f.evidence["deniedScans"] == ["nightly"]
    assert f.evidence["states"][0]["policyAssignmentName"] == "deny-public-storage"
    assert "The latest run of scan nightly was denied by a policy." in f.detail


async def test_account_wide_deny_passes_a_source_whose_runs_it_did_not_deny() -> None:
    world = _world(denied=False)
    w.pv(world)["runs"]["sales-sql/nightly"] = [
        w.scan_run("Succeeded", "2026-11-27T23:00:00Z"),
        w.scan_run("Failed", "2026-11-27T22:00:00Z", error_message=DENIED),
    ]
    world["policyStates"].append(_state(MANAGED_ID))
    [f] = await _run(world)
    assert f.status is Status.PASS and f.evidence["deniedScans"] == []
    assert "has not blocked this source's scans" in f.title
    assert f.fix and "az policy exemption create" in f.fix[0]  # still actionable for the other sources
    assert "None of this source's latest runs was denied by a policy" in f.detail


async def test_unreadable_runs_are_said_in_the_detail() -> None:
    fake = FakeWorld(_world(denied=False))
    fake.world["policyStates"].append(_state(MANAGED_ID))
    fake.fail["purview.runs"] = GatewayError("list Purview runs", status=403)
    [f] = await _run({}, fake)
    assert f.status is Status.WARN and f.evidence["deniedScans"] is None
    assert "could not be read" in f.detail


async def test_compliant_or_audit_states_pass() -> None:
    world = _world()
    world["policyStates"] += [
        _state(MANAGED_ID, complianceState="Compliant"),
        _state(MANAGED_ID, policyDefinitionAction="audit"),
    ]
    [f] = await _run(world)
    assert f.status is Status.PASS and f.evidence["states"] == []


async def test_ingestion_storage_is_used_when_no_managed_resources() -> None:
    world = _world(None, ingestion=MANAGED_ID)
    world["policyStates"].append(_state(MANAGED_ID))
    [f] = await _run(world)
    assert f.status is Status.FAIL and f.evidence["resourceId"] == MANAGED_ID


async def test_no_managed_storage_is_skipped() -> None:
    [f] = await _run(_world(None))
    assert f.status is Status.SKIPPED and "no managed storage account" in f.detail


async def test_two_assignments_give_two_findings_with_distinct_exemptions_and_reference_ids() -> None:
    world = _world()
    world["policyStates"] += [
        _state(MANAGED_ID, "deny-a"),
        _state(MANAGED_ID, "deny-b", policySetDefinitionId="/x/sets/1", policyDefinitionReferenceId="ref1"),
    ]
    findings = await _run(world)
    assert [f.status for f in findings] == [Status.FAIL, Status.FAIL]
    assert "--name purview-managed-storage-deny-a " in findings[0].fix[0]
    assert findings[1].fix[0].endswith("--exemption-category Waiver --policy-definition-reference-ids ref1")


async def test_source_storage_account_is_checked_for_storage_sources() -> None:
    world = _world(adls=True, denied=False)
    world["policyStates"].append(_state(w.STORAGE_ID))
    managed, source = await _run(world, source="sales-adls")
    assert managed.status is Status.PASS
    assert source.status is Status.WARN and "the source's storage account salesadls" in source.title
    assert (
        f"--name purview-source-storage --policy-assignment {ASSIGNMENT_ID} --scope {w.STORAGE_ID}"
        in source.fix[0]
    )


async def test_source_storage_deny_fails_when_the_runs_were_denied() -> None:
    world = _world(adls=True, denied=True)
    world["policyStates"].append(_state(w.STORAGE_ID))
    managed, source = await _run(world, source="sales-adls")
    assert managed.status is Status.PASS  # no deny state on the managed account
    assert source.status is Status.FAIL and source.evidence["deniedScans"] == ["weekly"]


async def test_sql_source_gets_no_source_storage_finding() -> None:
    fake = FakeWorld(_world())
    findings = await _run({}, fake)
    assert len(findings) == 1
    assert [c for c in fake.calls if c.startswith("arm.policy_states")] == [
        f"arm.policy_states:{MANAGED_ID.lower()}"
    ]


async def test_unreadable_policy_states_is_unknown() -> None:
    fake = FakeWorld(_world())
    fake.fail["arm.policy_states"] = GatewayError(
        "query deny policy states",
        status=403,
        permission="Microsoft.PolicyInsights/policyStates/queryResults/read",
    )
    [f] = await _run({}, fake)
    assert f.status is Status.UNKNOWN and "policyStates/queryResults/read" in f.detail
    assert f.evidence["resourceId"] == MANAGED_ID


async def test_unreadable_account_is_unknown() -> None:
    fake = FakeWorld(_world())
    fake.fail["arm.list"] = GatewayError("list Microsoft.Purview/accounts", status=403, permission="Reader")
    [f] = await _run({}, fake)
    assert f.status is Status.UNKNOWN and "list Microsoft.Purview/accounts" in f.detail
