"""source-access: blob RBAC, account keys, SQL Entra admin, credential shapes, skipped kinds, unknowns."""

from __future__ import annotations

from typing import Any

import pytest

from checks import sections as s
from checks.catalogue import source_access
from checks.errors import GatewayError
from checks.model import Finding, Status
from tests.checks import worlds as w
from tests.fakes import FakeWorld


async def _run(world: dict[str, Any], source: str = "sales-adls") -> list[Finding]:
    return await source_access.run(await FakeWorld(world).target(source))


async def test_msi_without_data_role_fails_with_fix_and_held_roles() -> None:
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(w.SUB_ID, w.READER))
    [f] = await _run(world)
    assert f.status is Status.FAIL and f.section == s.SOURCE_ACCESS and f.scan == "weekly"
    assert w.ACCOUNT in f.title and w.STORAGE_NAME in f.title
    assert f"Reader at {w.SUB_ID}" in f.detail and w.PURVIEW_MSI in f.detail
    assert f.fix == [
        f"az role assignment create --assignee-object-id {w.PURVIEW_MSI} --assignee-principal-type "
        f'ServicePrincipal --role "Storage Blob Data Reader" --scope {w.STORAGE_ID}'
    ]
    assert f.evidence["granted"] is False
    assert f.evidence["considered"] == [
        {"roleName": "Reader", "scope": w.SUB_ID, "principalType": "ServicePrincipal"}
    ]


async def test_msi_with_inherited_group_role_passes() -> None:
    world = w.adls_world()
    w.join_group(world, w.PURVIEW_MSI, w.GROUP_OID)
    world["roleAssignments"].append(
        w.assignment(w.RG_ID, w.BLOB_DATA_READER, w.GROUP_OID, principal_type="Group")
    )
    [f] = await _run(world)
    assert f.status is Status.PASS
    assert f.evidence["via"][0]["principalId"] == w.GROUP_OID


async def test_conditional_grant_warns() -> None:
    world = w.adls_world()
    world["roleAssignments"].append(
        w.assignment(w.STORAGE_ID, w.BLOB_DATA_READER, condition="@Resource[x] == 'y'")
    )
    [f] = await _run(world)
    assert f.status is Status.WARN and "ABAC" in f.title
    assert f.evidence["conditional"] is True


@pytest.mark.parametrize("shape", ["kind", "properties"])
async def test_service_principal_credential_both_shapes(shape: str) -> None:
    world = w.adls_world()
    w.pv(world)["scans"]["sales-adls"] = [
        w.scan("weekly", "AdlsGen2Credential", credential="sp-cred", credential_type="ServicePrincipal")
    ]
    w.pv(world)["credentials"].append(
        w.credential(
            "sp-cred",
            "ServicePrincipal",
            {
                "servicePrincipalId": w.SP_APP_ID,
                "tenant": w.TENANT,
                "servicePrincipalKey": w.kv_secret_ref("sp"),
            },
            shape=shape,
        )
    )
    world["roleAssignments"].append(w.assignment(w.STORAGE_ID, w.BLOB_DATA_READER, w.SP_OID))
    [f] = await _run(world)
    assert f.status is Status.PASS
    assert f.evidence["identity"] == {
        "objectId": w.SP_OID,
        "displayName": "scan-sp",
        "kind": "service-principal",
    }


async def test_service_principal_missing_in_graph_is_unknown() -> None:
    world = w.adls_world()
    w.pv(world)["scans"]["sales-adls"] = [
        w.scan("weekly", "AdlsGen2Credential", credential="sp-cred", credential_type="ServicePrincipal")
    ]
    w.pv(world)["credentials"].append(
        w.credential("sp-cred", "ServicePrincipal", {"servicePrincipalId": "nope"})
    )
    [f] = await _run(world)
    assert f.status is Status.UNKNOWN and "nope" in f.detail


@pytest.mark.parametrize(
    ("allowed", "status"), [(None, Status.PASS), (True, Status.PASS), (False, Status.FAIL)]
)
async def test_account_key_needs_shared_key_access(allowed: bool | None, status: Status) -> None:
    world = w.adls_world(shared_key=allowed)
    w.pv(world)["scans"]["sales-adls"] = [
        w.scan("weekly", "AdlsGen2Credential", credential="key-cred", credential_type="AccountKey")
    ]
    w.pv(world)["credentials"].append(
        w.credential("key-cred", "AccountKey", {"accountKey": w.kv_secret_ref("key")}, shape="properties")
    )
    [f] = await _run(world)
    assert f.status is status
    assert f.evidence["allowSharedKeyAccess"] is allowed
    if status is Status.FAIL:
        assert f.fix == [
            f"az storage account update --name {w.STORAGE_NAME} --resource-group {w.RG} "
            "--allow-shared-key-access true"
        ]


async def test_sql_msi_with_entra_admin_warns_with_tsql() -> None:
    world = w.sql_world()
    w.pv(world)["scans"]["sales-sql"][0]["properties"]["databaseName"] = "sales"
    [f] = await _run(world, "sales-sql")
    assert f.status is Status.WARN and f.scan == "nightly"
    assert f.evidence["entraAdmin"]["login"] == "sql-admins"
    assert f"CREATE USER [{w.ACCOUNT}] FROM EXTERNAL PROVIDER;" in f.fix
    assert f"ALTER ROLE db_datareader ADD MEMBER [{w.ACCOUNT}];" in f.fix


async def test_sql_admin_from_child_resource() -> None:
    world = w.sql_world(admin=False)
    world["resources"].append(
        {
            "id": f"{w.SQL_ID}/administrators/ActiveDirectory",
            "name": "ActiveDirectory",
            "type": "Microsoft.Sql/servers/administrators",
            "properties": {"administratorType": "ActiveDirectory", "login": "dba", "sid": "x"},
        }
    )
    [f] = await _run(world, "sales-sql")
    assert f.status is Status.WARN
    assert f.evidence["entraAdminSource"].endswith("/administrators/ActiveDirectory")


async def test_sql_without_entra_admin_fails() -> None:
    [f] = await _run(w.sql_world(admin=False), "sales-sql")
    assert f.status is Status.FAIL
    assert f.fix[0].startswith(
        f"az sql server ad-admin create --resource-group {w.RG} --server-name {w.SQL_NAME} "
    )
    assert "(not found)" in f.evidence["entraAdminSource"]


async def test_sql_user_assigned_identity_uses_its_resource_name() -> None:
    world = w.sql_world()
    w.pv(world)["scans"]["sales-sql"] = [
        w.scan("nightly", "AzureSqlDatabaseCredential", credential="uami", credential_type="ManagedIdentity")
    ]
    uami_id = f"{w.RG_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/scan-uami"
    w.pv(world)["credentials"].append(
        w.credential("uami", "ManagedIdentity", {"principalId": w.UAMI_OID, "resourceId": uami_id})
    )
    [f] = await _run(world, "sales-sql")
    assert "CREATE USER [scan-uami] FROM EXTERNAL PROVIDER;" in f.fix


async def test_sql_auth_is_skipped() -> None:
    world = w.sql_world()
    w.pv(world)["scans"]["sales-sql"] = [
        w.scan("nightly", "AzureSqlDatabaseCredential", credential="sql", credential_type="SqlAuth")
    ]
    w.pv(world)["credentials"].append(w.credential("sql", "SqlAuth", {"user": "scanner"}))
    [f] = await _run(world, "sales-sql")
    assert f.status is Status.SKIPPED and "SQL authentication" in f.title


async def test_unknown_kind_is_skipped_naming_it() -> None:
    world = w.base_world()
    w.with_source(world, w.data_source("ora", "Oracle", None, host="db"), [w.scan("s", "OracleCredential")])
    [f] = await _run(world, "ora")
    assert f.status is Status.SKIPPED and "Oracle" in f.title


async def test_role_assignment_failure_is_unknown_naming_permission() -> None:
    fake = FakeWorld(w.adls_world())
    fake.fail["arm.role_assignments"] = GatewayError(
        "list role assignments at the storage account",
        status=403,
        code="AuthorizationFailed",
        permission="Microsoft.Authorization/roleAssignments/read",
    )
    [f] = await source_access.run(await fake.target("sales-adls"))
    assert f.status is Status.UNKNOWN and f.scan == "weekly"
    assert "Microsoft.Authorization/roleAssignments/read" in f.detail
    assert f.evidence["error"]["permission"] == "Microsoft.Authorization/roleAssignments/read"
