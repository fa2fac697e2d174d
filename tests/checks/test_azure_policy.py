"""azure-policy: non-compliant deny states on Purview's managed storage account and Event Hubs namespace."""

from __future__ import annotations

from typing import Any

from checks import fixes
from checks import sections as s
from checks.catalogue import azure_policy
from checks.errors import GatewayError
from checks.model import Finding, Status
from tests.checks import worlds as w
from tests.fakes import FakeWorld

MANAGED_RG = f"{w.SUB_ID}/resourceGroups/managed-rg-pv"
MANAGED_ID = f"{MANAGED_RG}/providers/Microsoft.Storage/storageAccounts/scanwesteurope"
HUB_ID = f"{MANAGED_RG}/providers/Microsoft.EventHub/namespaces/Atlas-0000"
ASSIGNMENT_ID = f"{w.SUB_ID}/providers/Microsoft.Authorization/policyAssignments/deny-public-storage"
DEFINITION_ID = "/providers/Microsoft.Authorization/policyDefinitions/b2982f36-99f2-4db5-8eff-283140c09693"
INGESTION = {
    "id": "/subscriptions/99999999-0000-0000-0000-000000000000/resourceGroups/ingestion/providers/"
    "Microsoft.Storage/storageAccounts/ingestionwesteurope",
    "primaryEndpoint": "https://ingestionwesteurope.blob.core.windows.net/",
    "publicNetworkAccess": "Enabled",
}


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
BARE = "The operation failed. (Code: RequestDisallowedByPolicy)"


def _world(
    managed: str | None = MANAGED_ID,
    *,
    hub: str | None = None,
    ingestion: dict[str, Any] | None = None,
    adls: bool = False,
    denied: str | None = DENIED,
) -> dict[str, Any]:
    """A source whose scan's newest run was denied by a policy (unless `denied` is None)."""
    world = w.adls_world() if adls else w.sql_world()
    if denied:
        source, scan = ("sales-adls", "weekly") if adls else ("sales-sql", "nightly")
        w.pv(world)["runs"][f"{source}/{scan}"] = [
            w.scan_run("Failed", "2026-11-27T22:00:00Z", error_message=denied)
        ]
    props = world["resources"][0]["properties"]
    if managed is not None or hub is not None:
        props["managedResourceGroupName"] = "managed-rg-pv"
        props["managedResources"] = {"resourceGroup": MANAGED_RG}
        if managed is not None:
            props["managedResources"]["storageAccount"] = managed
        if hub is not None:
            props["managedResources"]["eventHubNamespace"] = hub
            props["managedEventHubState"] = "Enabled"
    if ingestion is not None:
        props["ingestionStorage"] = ingestion
    return world


async def _run(
    world: dict[str, Any], fake: FakeWorld | None = None, source: str = "sales-sql"
) -> list[Finding]:
    fake = fake or FakeWorld(world)
    return await azure_policy.run(await fake.target(source))


async def test_deny_on_managed_storage_fails_when_this_sources_run_was_denied() -> None:
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
        fixes.command(
            "az policy exemption create",
            [
                ("--name", "purview-managed-storage"),
                ("--policy-assignment", "$ASSIGNMENT"),
                ("--scope", "$SCOPE"),
                ("--exemption-category", "Waiver"),
            ],
            variables={"ASSIGNMENT": ASSIGNMENT_ID, "SCOPE": MANAGED_ID},
        )
    ]
    assert f.fix[0].startswith(
        f"ASSIGNMENT={ASSIGNMENT_ID}\nSCOPE={MANAGED_ID}\naz policy exemption create \\\n"
    )
    assert f.evidence["resourceId"] == MANAGED_ID and f.evidence["deniedScans"] == ["nightly"]
    assert f.evidence["states"][0]["policyAssignmentName"] == "deny-public-storage"
    assert f.evidence["causeSince"] == "2026-11-27T10:00:00Z"  # the state's timestamp
    assert f.evidence["deniedRuns"][0]["scan"] == "nightly"
    assert "The newest run of scan nightly failed with a policy denial" in f.detail


async def test_bare_request_disallowed_by_policy_also_fails() -> None:
    world = _world(denied=BARE)
    world["policyStates"].append(_state(MANAGED_ID))
    [f] = await _run(world)
    assert f.status is Status.FAIL


async def test_account_wide_deny_warns_on_a_source_whose_runs_it_did_not_deny() -> None:
    """The hazard: warn on every source, with an honest title, until one of its runs is denied."""
    world = _world(denied=None)
    w.pv(world)["runs"]["sales-sql/nightly"] = [
        w.scan_run("Succeeded", "2026-11-27T23:00:00Z"),
        w.scan_run("Failed", "2026-11-27T22:00:00Z", error_message=DENIED),
    ]
    world["policyStates"].append(_state(MANAGED_ID))
    [f] = await _run(world)
    assert f.status is Status.WARN and f.evidence["deniedScans"] == []
    assert f.title == (
        "Azure Policy deny-public-storage denies updates to Purview's managed storage account scanwesteurope"
    )
    assert "causeSince" not in f.evidence
    assert f.fix and "az policy exemption create" in f.fix[0]
    assert "None of this source's newest runs was denied by a policy yet" in f.detail


async def test_a_failure_for_another_reason_does_not_fail_the_policy_finding() -> None:
    world = _world(denied="Login failed for user 'scanner'. (Error 18456)")
    world["policyStates"].append(_state(MANAGED_ID))
    [f] = await _run(world)
    assert f.status is Status.WARN


async def test_a_denial_naming_another_resource_is_not_this_cause() -> None:
    world = _world(
        denied="Resource 'pe-salesadls' was disallowed by policy. (Code: RequestDisallowedByPolicy)"
    )
    world["policyStates"].append(_state(MANAGED_ID))
    [f] = await _run(world)
    assert f.status is Status.WARN and f.evidence["deniedScans"] == []


async def test_an_unfinished_newer_run_does_not_hide_the_denial() -> None:
    world = _world()
    w.pv(world)["runs"]["sales-sql/nightly"].insert(
        0, {**w.scan_run("InProgress", "2026-11-28T07:00:00Z"), "endTime": None}
    )
    world["policyStates"].append(_state(MANAGED_ID))
    [f] = await _run(world)
    assert f.status is Status.FAIL


async def test_unreadable_runs_warn_and_say_so() -> None:
    fake = FakeWorld(_world(denied=None))
    fake.world["policyStates"].append(_state(MANAGED_ID))
    fake.fail["purview.runs"] = GatewayError("list Purview runs", status=403)
    [f] = await _run({}, fake)
    assert f.status is Status.WARN and f.evidence["deniedScans"] is None
    assert "could not be read" in f.detail


async def test_compliant_or_audit_states_pass_with_a_title_naming_no_problem() -> None:
    world = _world(denied=None)
    world["policyStates"] += [
        _state(MANAGED_ID, complianceState="Compliant"),
        _state(MANAGED_ID, policyDefinitionAction="audit"),
    ]
    [f] = await _run(world)
    assert f.status is Status.PASS and f.evidence["states"] == []
    assert f.title == "No deny policy blocks Purview's managed storage account scanwesteurope"


async def test_denied_run_without_any_deny_state_warns_rather_than_passes() -> None:
    [f] = await _run(_world())
    assert f.status is Status.WARN and "was denied by an Azure Policy" in f.title
    assert f.evidence["deniedRuns"][0]["scan"] == "nightly"
    assert "policies/deny/action" in f.fix[0]


async def test_managed_event_hub_namespace_is_checked_too() -> None:
    world = _world(hub=HUB_ID, denied=None)
    world["policyStates"].append(_state(HUB_ID, "deny-eh-public"))
    storage, hub = await _run(world)
    assert storage.status is Status.PASS and storage.evidence["resourceId"] == MANAGED_ID
    assert hub.status is Status.WARN and hub.evidence["resourceId"] == HUB_ID
    assert "Purview's managed Event Hubs namespace Atlas-0000" in hub.title
    assert "--name purview-managed-eventhub " in hub.fix[0]


async def test_denial_naming_the_storage_fails_the_storage_not_the_event_hub() -> None:
    world = _world(hub=HUB_ID)
    world["policyStates"] += [_state(MANAGED_ID), _state(HUB_ID, "deny-eh-public")]
    storage, hub = await _run(world)
    assert storage.status is Status.FAIL and hub.status is Status.WARN


async def test_bare_denial_goes_to_the_first_resource_with_a_deny_state() -> None:
    world = _world(hub=HUB_ID, denied=BARE)
    world["policyStates"].append(_state(HUB_ID, "deny-eh-public"))
    storage, hub = await _run(world)
    assert storage.status is Status.PASS and hub.status is Status.FAIL


async def test_disabled_managed_event_hub_is_not_checked() -> None:
    world = _world(hub=HUB_ID, denied=None)
    world["resources"][0]["properties"]["managedEventHubState"] = "Disabled"
    fake = FakeWorld(world)
    [f] = await _run({}, fake)
    assert f.evidence["resourceId"] == MANAGED_ID
    assert not [c for c in fake.calls if c.startswith(f"arm.policy_states:{HUB_ID.lower()}")]


async def test_account_with_ingestion_storage_is_skipped_saying_so() -> None:
    """Accounts created after 15 December 2023: no managed storage in the customer's subscription."""
    world = _world(None, ingestion=INGESTION)
    world["resources"][0]["properties"]["createdAt"] = "2024-05-02T10:00:00Z"
    world["policyStates"].append(_state(INGESTION["id"]))  # even a deny state there is not ours to judge
    fake = FakeWorld(world)
    [f] = await _run({}, fake)
    assert f.status is Status.SKIPPED and "in your subscription" in f.title
    assert "properties.ingestionStorage" in f.detail and "15 December 2023" in f.detail
    assert "created 2024-05-02" in f.detail
    assert not [c for c in fake.calls if c.startswith("arm.policy_states")]


async def test_account_without_managed_resources_is_skipped() -> None:
    [f] = await _run(_world(None))
    assert f.status is Status.SKIPPED and "no properties.managedResources" in f.detail


async def test_two_assignments_give_two_findings_with_distinct_exemptions_and_reference_ids() -> None:
    world = _world(denied=BARE)
    world["policyStates"] += [
        _state(MANAGED_ID, "deny-a"),
        _state(MANAGED_ID, "deny-b", policySetDefinitionId="/x/sets/1", policyDefinitionReferenceId="ref1"),
    ]
    findings = await _run(world)
    assert [f.status for f in findings] == [Status.FAIL, Status.FAIL]
    assert "--name purview-managed-storage-deny-a " in findings[0].fix[0]
    last = "--exemption-category Waiver \\\n  --policy-definition-reference-ids ref1"
    assert findings[1].fix[0].endswith(last)


async def test_deny_on_the_sources_own_storage_account_is_no_warning() -> None:
    """Purview only reads the source: a deny policy there does not stop its scans, so it is not read."""
    world = _world(adls=True, denied=None)
    world["policyStates"].append(_state(w.STORAGE_ID))
    fake = FakeWorld(world)
    findings = await _run({}, fake, source="sales-adls")
    assert [(f.status, f.evidence["resourceId"]) for f in findings] == [(Status.PASS, MANAGED_ID)]
    assert "does not stop its scans" in findings[0].detail
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
