"""reader-role: multi-source */read for Purview's identity, single-source read, the requester."""

from __future__ import annotations

from typing import Any

from checks import sections as s
from checks.catalogue import reader_role
from checks.errors import GatewayError
from checks.model import Finding, Status
from tests.checks import worlds as w
from tests.fakes import FakeWorld


def _sub_world() -> dict[str, Any]:
    world = w.base_world()
    return w.with_source(
        world,
        w.data_source("contoso-sub", "AzureSubscription", w.SUB_ID),
        [w.scan("all", "AzureSubscriptionMsi")],
    )


async def _run(world: dict[str, Any], source: str, upn: str | None = None) -> list[Finding]:
    return await reader_role.run(await FakeWorld(world).target(source, requester_upn=upn))


async def test_multi_source_without_reader_fails() -> None:
    world = _sub_world()
    world["roleAssignments"].append(w.assignment(w.SUB_ID, w.BLOB_DATA_READER))
    [f] = await _run(world, "contoso-sub")
    assert f.status is Status.FAIL and f.section == s.SCAN_MULTIPLE
    assert f.fix == [
        f"az role assignment create --assignee-object-id {w.PURVIEW_MSI} --assignee-principal-type "
        f"ServicePrincipal --role Reader --scope {w.SUB_ID}"
    ]
    assert "Microsoft.Storage/storageAccounts/read" in f.evidence["missing"]
    assert f"Storage Blob Data Reader at {w.SUB_ID}" in f.detail


async def test_multi_source_with_reader_passes() -> None:
    world = _sub_world()
    world["roleAssignments"].append(w.assignment(w.SUB_ID, w.READER))
    [f] = await _run(world, "contoso-sub")
    assert f.status is Status.PASS and f.evidence["missing"] == []


async def test_multi_source_read_narrowed_by_not_actions_fails() -> None:
    world = _sub_world()
    world["roleDefinitions"].append(
        w.custom_role(
            "99999999-0000-0000-0000-00000000000a",
            "Reader except SQL",
            actions=["*/read"],
            not_actions=["Microsoft.Sql/*"],
        )
    )
    world["roleAssignments"].append(w.assignment(w.SUB_ID, "99999999-0000-0000-0000-00000000000a"))
    [f] = await _run(world, "contoso-sub")
    assert f.status is Status.FAIL
    assert f.evidence["missing"] == ["Microsoft.Sql/servers/read", "Microsoft.Sql/servers/databases/read"]


async def test_resource_group_source_scope_and_storage_wildcard_role_is_not_enough() -> None:
    world = w.base_world()
    w.with_source(
        world,
        w.data_source("rg-src", "AzureResourceGroup", w.RG_ID),
        [w.scan("all", "AzureResourceGroupMsi")],
    )
    world["roleDefinitions"].append(
        w.custom_role(
            "99999999-0000-0000-0000-00000000000b", "Storage reader", actions=["Microsoft.Storage/*/read"]
        )
    )
    world["roleAssignments"].append(w.assignment(w.RG_ID, "99999999-0000-0000-0000-00000000000b"))
    [f] = await _run(world, "rg-src")
    assert f.status is Status.FAIL and f.evidence["scope"] == w.RG_ID
    assert "Microsoft.Storage/storageAccounts/read" not in f.evidence["missing"]


async def test_single_source_scan_identity_without_read_warns_and_user_checked() -> None:
    world = w.adls_world()
    world["roleAssignments"] += [
        w.assignment(w.STORAGE_ID, w.BLOB_DATA_READER),
        w.assignment(w.RG_ID, w.READER, w.USER_OID, principal_type="User"),
    ]
    findings = await _run(world, "sales-adls", upn=w.USER_UPN)
    by_role = {f.evidence["identity"]["role"]: f for f in findings}
    msi, user = by_role["scan"], by_role["requester"]
    assert msi.status is Status.WARN and msi.section == s.REGISTER_SINGLE and msi.scan == "weekly"
    assert msi.evidence["missing"] == ["Microsoft.Storage/storageAccounts/read"]
    assert user.status is Status.PASS and user.evidence["identity"]["objectId"] == w.USER_OID


async def test_requester_without_reader_gets_user_fix() -> None:
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(w.SUB_ID, w.READER))
    findings = await _run(world, "sales-adls", upn=w.USER_UPN)
    [user] = [f for f in findings if f.evidence.get("identity", {}).get("role") == "requester"]
    assert user.status is Status.WARN
    assert "--assignee-principal-type User --role Reader" in user.fix[0]


async def test_graph_failure_is_unknown_for_requester_only() -> None:
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(w.SUB_ID, w.READER))
    fake = FakeWorld(world)
    fake.fail["graph.user"] = GatewayError("GET Graph user", status=403, permission="User.Read.All")
    findings = await reader_role.run(await fake.target("sales-adls", requester_upn=w.USER_UPN))
    statuses = sorted(f.status.value for f in findings)
    assert statuses == ["pass", "unknown"]
    [unknown] = [f for f in findings if f.status is Status.UNKNOWN]
    assert "User.Read.All" in unknown.detail


async def test_unknown_requester_upn_is_unknown() -> None:
    world = w.adls_world()
    findings = await _run(world, "sales-adls", upn="nobody@contoso.com")
    assert any(f.status is Status.UNKNOWN and "nobody@contoso.com" in f.detail for f in findings)


async def test_role_assignment_failure_is_unknown() -> None:
    fake = FakeWorld(_sub_world())
    fake.fail["arm.role_assignments"] = GatewayError(
        "list role assignments", status=403, permission="Microsoft.Authorization/roleAssignments/read"
    )
    [f] = await reader_role.run(await fake.target("contoso-sub"))
    assert f.status is Status.UNKNOWN and "roleAssignments/read" in f.detail


async def test_unknown_kind_skipped() -> None:
    world = w.base_world()
    w.with_source(world, w.data_source("pbi", "PowerBI", None), [w.scan("s", "PowerBIMsi")])
    [f] = await _run(world, "pbi")
    assert f.status is Status.SKIPPED and "PowerBI" in f.detail
