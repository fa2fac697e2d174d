"""reader-role: multi-source */read for Purview's identity; single sources: only the requester's Reader."""

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
        f"SCOPE={w.SUB_ID}\naz role assignment create \\\n  --assignee-object-id {w.PURVIEW_MSI} \\\n"
        '  --assignee-principal-type ServicePrincipal \\\n  --role Reader \\\n  --scope "$SCOPE"'
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


async def test_single_source_purview_without_reader_is_not_a_problem_and_not_read() -> None:
    """Set up as the connector page advises: Storage Blob Data Reader only, no Reader. Nothing to warn."""
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(w.STORAGE_ID, w.BLOB_DATA_READER))
    fake = FakeWorld(world)
    [f] = await reader_role.run(await fake.target("sales-adls"))
    assert f.status is Status.SKIPPED and f.section == s.REGISTER_SINGLE
    assert "person registering" in f.title and "needs no Reader to scan a single source" in f.detail
    assert not [c for c in fake.calls if c.startswith("arm.role_assignments")]  # not even read


async def test_single_source_with_service_principal_scan_is_skipped_too() -> None:
    world = w.adls_world()
    w.pv(world)["scans"]["sales-adls"] = [
        w.scan("weekly", "AdlsGen2ServicePrincipal", credential="sp", credential_type="ServicePrincipal")
    ]
    w.pv(world)["credentials"].append(
        w.credential("sp", "ServicePrincipal", {"servicePrincipalId": w.SP_APP_ID})
    )
    [f] = await _run(world, "sales-adls")
    assert f.status is Status.SKIPPED


async def test_single_source_requester_with_reader_passes_and_purview_is_not_evaluated() -> None:
    world = w.adls_world()
    world["roleAssignments"] += [
        w.assignment(w.STORAGE_ID, w.BLOB_DATA_READER),
        w.assignment(w.RG_ID, w.READER, w.USER_OID, principal_type="User"),
    ]
    [user] = await _run(world, "sales-adls", upn=w.USER_UPN)
    assert user.status is Status.PASS and user.section == s.REGISTER_SINGLE
    assert user.evidence["identity"]["role"] == "requester"
    assert user.evidence["identity"]["objectId"] == w.USER_OID
    assert "needs no Reader to scan a single source" in user.detail


async def test_single_source_requester_without_reader_warns_for_registering_only() -> None:
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(w.SUB_ID, w.READER))  # Purview's: irrelevant here
    [user] = await _run(world, "sales-adls", upn=w.USER_UPN)
    assert user.status is Status.WARN and user.evidence["identity"]["role"] == "requester"
    assert user.title == "Alice lacks Reader on salesadls"
    assert "cannot register this source" in user.detail and "does not stop existing scans" in user.detail
    assert user.evidence["missing"] == ["Microsoft.Storage/storageAccounts/read"]
    assert "--assignee-principal-type User \\\n  --role Reader" in user.fix[0]


async def test_multi_source_requester_without_reader_warns_while_purview_fails() -> None:
    world = _sub_world()
    findings = await _run(world, "contoso-sub", upn=w.USER_UPN)
    by_role = {f.evidence["identity"]["role"]: f for f in findings}
    assert by_role["purview"].status is Status.FAIL
    assert "cannot enumerate" in by_role["purview"].detail
    assert by_role["requester"].status is Status.WARN
    assert "does not stop existing scans" in by_role["requester"].detail


async def test_multi_source_service_principal_scan_identity_without_reader_fails() -> None:
    world = _sub_world()
    w.pv(world)["scans"]["contoso-sub"] = [
        w.scan("all", "AzureSubscriptionCredential", credential="sp", credential_type="ServicePrincipal")
    ]
    w.pv(world)["credentials"].append(
        w.credential("sp", "ServicePrincipal", {"servicePrincipalId": w.SP_APP_ID})
    )
    world["roleAssignments"].append(w.assignment(w.SUB_ID, w.READER))  # Purview's MSI only
    findings = await _run(world, "contoso-sub")
    by_role = {f.evidence["identity"]["role"]: f for f in findings}
    assert by_role["purview"].status is Status.PASS
    assert by_role["scan"].status is Status.FAIL and by_role["scan"].scan == "all"


async def test_graph_failure_is_unknown_for_the_requester() -> None:
    world = w.adls_world()
    fake = FakeWorld(world)
    fake.fail["graph.user"] = GatewayError("GET Graph user", status=403, permission="User.Read.All")
    [unknown] = await reader_role.run(await fake.target("sales-adls", requester_upn=w.USER_UPN))
    assert unknown.status is Status.UNKNOWN and "User.Read.All" in unknown.detail


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
