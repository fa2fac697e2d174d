"""source-access: blob RBAC, account keys, SQL Entra admin, credential shapes, skipped kinds, unknowns."""

from __future__ import annotations

from typing import Any

import pytest

from checks import sections as s
from checks.catalogue import source_access
from checks.errors import GatewayError
from checks.identity import Identity
from checks.model import Finding, Status
from checks.source_kinds import source_kind
from tests.checks import worlds as w
from tests.fakes import FakeWorld


async def _run(world: dict[str, Any], source: str = "sales-adls") -> list[Finding]:
    return await source_access.run(await FakeWorld(world).target(source))


async def test_msi_without_data_role_fails_with_fix_and_held_roles() -> None:
    world = w.adls_world(hns=False)
    world["roleAssignments"].append(w.assignment(w.SUB_ID, w.READER))
    [f] = await _run(world)
    assert f.status is Status.FAIL and f.section == s.SOURCE_ACCESS and f.scan == "weekly"
    assert w.ACCOUNT in f.title and w.STORAGE_NAME in f.title
    assert f"Reader at {w.SUB_ID}" in f.detail and w.PURVIEW_MSI in f.detail
    # copyable: the scope in a variable, one flag per line
    assert f.fix == [
        f"SCOPE={w.STORAGE_ID}\n"
        "az role assignment create \\\n"
        f"  --assignee-object-id {w.PURVIEW_MSI} \\\n"
        "  --assignee-principal-type ServicePrincipal \\\n"
        "  --role 'Storage Blob Data Reader' \\\n"
        '  --scope "$SCOPE"'
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
            f"az storage account update \\\n  --name {w.STORAGE_NAME} \\\n  --resource-group {w.RG} \\\n"
            "  --allow-shared-key-access true"
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
        f"az sql server ad-admin create \\\n  --resource-group {w.RG} \\\n  --server-name {w.SQL_NAME} \\\n"
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


async def test_sql_auth_with_entra_only_off_passes() -> None:
    [f] = await _run(_sql_login_world(), "sales-sql")
    assert f.status is Status.PASS and f.title == f"{w.SQL_NAME} accepts SQL logins (credential sql)"
    assert f.evidence["azureADOnlyAuthentication"] is False
    assert f.evidence["entraOnlySource"] == "properties.administrators"


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


# --- issue 8 ---------------------------------------------------------------------------------------------

MISMATCH = (
    "Failed to access the data source 'https://salesadls.dfs.core.windows.net/' with the managed identity of "
    "Microsoft Purview account 'contoso-pv'. Status: 403 (This request is not authorized to perform this "
    "operation using this permission.) ErrorCode: AuthorizationPermissionMismatch"
)
ENTRA_ONLY_18456 = (
    "Login failed for user 'scanner'. Reason: Azure Active Directory only authentication is enabled. "
    "Please contact your system administrator. Error number: 18456, State: 1, Class: 14"
)
CONTAINER = f"{w.STORAGE_ID}/blobServices/default/containers"


def _runs(world: dict[str, Any], key: str, *runs: dict[str, Any]) -> None:
    w.pv(world)["runs"][key] = list(runs)


# ADLS Gen2: POSIX ACLs after RBAC ---------------------------------------------------------------------


async def test_hns_without_data_role_warns_naming_acls() -> None:
    world = w.adls_world()  # isHnsEnabled: true
    world["roleAssignments"].append(w.assignment(w.SUB_ID, w.READER))
    [f] = await _run(world)
    assert f.status is Status.WARN and "ACLs" in f.title
    assert (
        "access may be granted by ACLs on the filesystem, which Azure Resource Manager cannot show"
        in f.detail
    )
    assert "Execute on every folder from the root, Read on files" in f.detail
    assert "data-lake-storage-access-control-model" in f.detail
    assert "\naz role assignment create" in f.fix[0] and f.fix[2].startswith("az storage fs access show")
    assert f.fix[1].startswith("Or grant it through ACLs") and "#" not in "".join(f.fix)
    assert f.evidence["isHnsEnabled"] is True


async def test_hns_without_data_role_fails_when_the_newest_run_was_refused_403() -> None:
    world = w.adls_world()
    _runs(
        world,
        "sales-adls/weekly",
        w.scan_run("Failed", "2026-11-28T07:14:00Z", error_message=MISMATCH),
        w.scan_run("Succeeded", "2026-11-21T07:14:00Z"),
    )
    [f] = await _run(world)
    assert f.status is Status.FAIL and "no data role" in f.title
    assert "AuthorizationPermissionMismatch" in f.detail
    assert f.evidence["newestRun"]["cause"] == "storage-data-permission"


@pytest.mark.parametrize(
    "runs",
    [
        # an older 403, since succeeded: the ACLs (or something) grant access now
        [
            w.scan_run("Succeeded", "2026-11-28T07:14:00Z"),
            w.scan_run("Failed", "2026-11-21T07:14:00Z", error_message=MISMATCH),
        ],
        # the newest run failed, but not with the data-permission 403 (a network refusal)
        [
            w.scan_run(
                "Failed", "2026-11-28T07:14:00Z", error_message="Status: 403. ErrorCode: AuthorizationFailure"
            )
        ],
        # running now, the last finished one succeeded
        [w.scan_run("InProgress", "2026-11-28T07:50:00Z"), w.scan_run("Succeeded", "2026-11-28T07:14:00Z")],
    ],
)
async def test_hns_without_data_role_stays_warn_without_a_corroborating_newest_run(
    runs: list[dict[str, Any]],
) -> None:
    world = w.adls_world()
    _runs(world, "sales-adls/weekly", *runs)
    [f] = await _run(world)
    assert f.status is Status.WARN


@pytest.mark.parametrize(("kind", "status"), [("AdlsGen2", Status.WARN), ("AzureStorage", Status.FAIL)])
async def test_hns_not_stated_follows_the_registered_kind(kind: str, status: Status) -> None:
    world = w.adls_world()
    del world["resources"][-1]["properties"]["isHnsEnabled"]
    w.pv(world)["dataSources"][0]["kind"] = kind
    [f] = await _run(world)
    assert f.status is status


async def test_blob_without_hns_has_no_acls_so_no_role_fails() -> None:
    world = w.adls_world(hns=False)
    w.pv(world)["dataSources"][0]["kind"] = "AzureStorage"
    [f] = await _run(world)
    assert f.status is Status.FAIL and "ACL" not in f.detail and len(f.fix) == 1


async def test_unreadable_storage_account_without_a_role_is_unknown() -> None:
    fake = FakeWorld(w.adls_world())
    fake.fail[f"arm.resource:{w.STORAGE_ID.lower()}"] = GatewayError(
        f"GET {w.STORAGE_ID}", status=403, code="AuthorizationFailed", permission="Reader on the account"
    )
    [f] = await source_access.run(await fake.target("sales-adls"))
    assert f.status is Status.UNKNOWN and "Reader on the account" in f.detail


async def test_unreadable_storage_account_with_a_role_still_passes() -> None:
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(w.STORAGE_ID, w.BLOB_DATA_READER))
    fake = FakeWorld(world)
    fake.fail[f"arm.resource:{w.STORAGE_ID.lower()}"] = GatewayError(f"GET {w.STORAGE_ID}", status=403)
    [f] = await source_access.run(await fake.target("sales-adls"))
    assert f.status is Status.PASS


# Grants below the resource, deny assignments (rbac.Grant.partial / .denied_by) --------------------------


def _container_grant(world: dict[str, Any], *names: str) -> None:
    for name in names:
        world["roleAssignments"].append(w.assignment(f"{CONTAINER}/{name}", w.BLOB_DATA_READER))


async def test_grant_on_some_containers_only_is_partial_warn() -> None:
    world = w.adls_world(hns=False)
    _container_grant(world, "raw", "curated")
    [f] = await _run(world)
    assert f.status is Status.WARN
    assert "partial: granted only on containers curated, raw; the scan reads the whole account" in f.title
    assert {p["scope"].rsplit("/", 1)[-1] for p in f.evidence["partial"]} == {"raw", "curated"}


async def test_partial_grant_fails_when_the_newest_run_was_refused() -> None:
    world = w.adls_world(hns=False)
    _container_grant(world, "raw")
    _runs(world, "sales-adls/weekly", w.scan_run("Failed", "2026-11-28T07:14:00Z", error_message=MISMATCH))
    [f] = await _run(world)
    assert f.status is Status.FAIL and "partial" in f.title


async def test_partial_next_to_an_account_grant_passes() -> None:
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(w.STORAGE_ID, w.BLOB_DATA_READER))
    _container_grant(world, "raw")
    [f] = await _run(world)
    assert f.status is Status.PASS


def _denying(name: str, description: str, **kwargs: Any) -> dict[str, Any]:
    return w.deny_assignment(
        w.RG_ID, name=name, description=description, data_actions=["Microsoft.Storage/*"], **kwargs
    )


@pytest.mark.parametrize(
    ("name", "description", "owner", "fix"),
    [
        (
            "System deny assignment created by managed application",
            "Created by Azure for a managed application's resources",
            "a managed application",
            "only its publisher can exclude",
        ),
        (
            "Blueprint lock",
            "Deny write and delete",
            "an Azure Blueprints assignment",
            "locks.excludedPrincipals",
        ),
        (
            "data-stack-deny",
            "Deny assignment of deployment stack 'data-stack'",
            "a deployment stack",
            "--deny-settings-excluded-principals",
        ),
        (
            "System deny assignment",
            "Protected by Azure",
            "Azure (a managed application, blueprint or deployment stack)",
            "cannot be removed directly",
        ),
    ],
)
async def test_deny_assignment_overrides_a_grant_and_names_its_owner(
    name: str, description: str, owner: str, fix: str
) -> None:
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(w.STORAGE_ID, w.BLOB_DATA_READER))
    world["denyAssignments"] = [_denying(name, description)]
    [f] = await _run(world)
    assert f.status is Status.FAIL and f.title.startswith(f"Deny assignment {name} blocks")
    assert f"owned by {owner}" in f.detail
    assert any(fix in line for line in f.fix) and any(w.PURVIEW_MSI in line for line in f.fix)
    assert f.evidence["deniedBy"][0]["name"] == name and "causeSince" not in f.evidence


async def test_deny_assignment_excluding_the_identity_does_not_deny() -> None:
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(w.STORAGE_ID, w.BLOB_DATA_READER))
    world["denyAssignments"] = [
        _denying("Blueprint lock", "blueprint", exclude=[(w.PURVIEW_MSI, "ServicePrincipal")])
    ]
    [f] = await _run(world)
    assert f.status is Status.PASS


async def test_conditional_deny_assignment_warns() -> None:
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(w.STORAGE_ID, w.BLOB_DATA_READER))
    world["denyAssignments"] = [_denying("Blueprint lock", "blueprint", condition="@Resource[x] == 'y'")]
    [f] = await _run(world)
    assert f.status is Status.WARN and "Blueprint lock" in f.detail


def test_deny_assignment_with_a_creation_time_carries_cause_since() -> None:
    """ARM's deny assignments carry `createdOn` in newer api-versions: the earliest becomes causeSince."""
    identity = Identity(object_id=w.PURVIEW_MSI, display_name=w.ACCOUNT, kind="purview-msi")
    kind = source_kind("AdlsGen2")
    assert kind is not None
    deny = {
        "name": "stack",
        "scope": w.RG_ID,
        "description": "deployment stack",
        "createdOn": "2026-11-25T10:00Z",
    }
    f = source_access._denied(kind, "weekly", identity, w.STORAGE_ID, (deny,), {})
    assert f.status is Status.FAIL and f.evidence["causeSince"] == "2026-11-25T10:00:00Z"


# Shared key -------------------------------------------------------------------------------------------------


async def test_shared_key_disabled_blocks_every_run_and_is_corroborated_by_its_error() -> None:
    world = w.adls_world(shared_key=False)
    w.pv(world)["scans"]["sales-adls"] = [
        w.scan("weekly", "AdlsGen2Credential", credential="key-cred", credential_type="AccountKey")
    ]
    w.pv(world)["credentials"].append(
        w.credential("key-cred", "AccountKey", {"accountKey": w.kv_secret_ref("k")})
    )
    _runs(
        world,
        "sales-adls/weekly",
        w.scan_run(
            "Failed",
            "2026-11-28T07:14:00Z",
            error_message="Status: 403 (Key based authentication is not permitted on this storage account.) "
            "ErrorCode: KeyBasedAuthenticationNotPermitted",
        ),
    )
    [f] = await _run(world)
    assert f.status is Status.FAIL and f.evidence["blocksEveryRun"] is True
    assert f.evidence["corroboratedBy"]["cause"] == "storage-shared-key-disabled"


# Entra-only SQL -------------------------------------------------------------------------------------------


def _sql_login_world(
    kind: str = "AzureSqlDatabase", ctype: str = "SqlAuth", world: dict[str, Any] | None = None
) -> dict[str, Any]:
    world = world or w.sql_world()
    w.pv(world)["dataSources"][0]["kind"] = kind
    scan = w.scan("nightly", f"{kind}Credential", credential="sql", credential_type=ctype)
    scan["properties"]["databaseName"] = "sales"
    w.pv(world)["scans"]["sales-sql"] = [scan]
    w.pv(world)["credentials"].append(
        w.credential("sql", ctype, {"userName": "scanner", "password": w.kv_secret_ref("sql-password")})
    )
    return world


def _entra_only(parent: str, enabled: bool, name: str = "Default", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{parent}/azureADOnlyAuthentications/{name}",
        "name": name,
        "type": f"{w.SQL_ID.split('/providers/')[1].split('/')[0]}/servers/azureADOnlyAuthentications"
        if "Microsoft.Sql/servers" in parent
        else "Microsoft.Synapse/workspaces/azureADOnlyAuthentications",
        "properties": {"azureADOnlyAuthentication": enabled},
        **extra,
    }


@pytest.mark.parametrize("ctype", ["SqlAuth", "BasicAuth"])
async def test_entra_only_child_refuses_sql_logins_whatever_the_password(ctype: str) -> None:
    world = _sql_login_world(ctype=ctype)
    world["resources"].append(_entra_only(w.SQL_ID, True))
    [f] = await _run(world, "sales-sql")
    assert f.status is Status.FAIL and "accepts only Microsoft Entra sign-ins" in f.title
    assert "whatever the password" in f.detail and "18456" in f.detail
    assert f"az sql server ad-only-auth disable --resource-group {w.RG} --name {w.SQL_NAME}" in f.fix
    assert f"CREATE USER [{w.ACCOUNT}] FROM EXTERNAL PROVIDER;" in f.fix
    assert f.evidence["blocksEveryRun"] is True and "causeSince" not in f.evidence
    assert f.evidence["entraOnlySource"].endswith("/azureADOnlyAuthentications/Default")


async def test_entra_only_from_the_admin_when_the_child_is_absent() -> None:
    world = _sql_login_world()
    world["resources"][-1]["properties"]["administrators"]["azureADOnlyAuthentication"] = True
    [f] = await _run(world, "sales-sql")
    assert f.status is Status.FAIL and f.evidence["entraOnlySource"] == "properties.administrators"


async def test_entra_only_from_the_admin_child_resource() -> None:
    world = _sql_login_world(world=w.sql_world(admin=False))
    world["resources"].append(
        {
            "id": f"{w.SQL_ID}/administrators/ActiveDirectory",
            "name": "ActiveDirectory",
            "type": "Microsoft.Sql/servers/administrators",
            "properties": {"login": "dba", "sid": "x", "azureADOnlyAuthentication": True},
        }
    )
    [f] = await _run(world, "sales-sql")
    assert f.status is Status.FAIL and f.evidence["entraOnlySource"].endswith(
        "/administrators/ActiveDirectory"
    )


async def test_the_setting_itself_beats_the_admins_mirror() -> None:
    world = _sql_login_world()
    world["resources"][-1]["properties"]["administrators"]["azureADOnlyAuthentication"] = True
    world["resources"].append(_entra_only(w.SQL_ID, False))
    [f] = await _run(world, "sales-sql")
    assert f.status is Status.PASS


async def test_unreadable_entra_only_setting_is_unknown_never_fail() -> None:
    world = _sql_login_world()
    world["resources"][-1]["properties"]["administrators"]["azureADOnlyAuthentication"] = True
    fake = FakeWorld(world)
    child = f"{w.SQL_ID}/azureADOnlyAuthentications/Default"
    fake.fail[f"arm.resource:{child.lower()}"] = GatewayError(
        f"GET {child}", status=403, code="AuthorizationFailed", permission="Reader on the SQL server"
    )
    [f] = await source_access.run(await fake.target("sales-sql"))
    assert f.status is Status.UNKNOWN
    assert "Reader on the SQL server" in f.detail and child in f.detail


async def test_entra_only_cause_since_and_corroborating_error() -> None:
    world = _sql_login_world()
    world["resources"].append(
        _entra_only(w.SQL_ID, True, systemData={"lastModifiedAt": "2026-11-27T09:00:00Z"})
    )
    _runs(
        world,
        "sales-sql/nightly",
        w.scan_run("Failed", "2026-11-28T02:00:00Z", error_message=ENTRA_ONLY_18456),
    )
    [f] = await _run(world, "sales-sql")
    assert f.status is Status.FAIL and f.evidence["causeSince"] == "2026-11-27T09:00:00Z"
    assert f.evidence["corroboratedBy"]["cause"] == "sql-entra-only"
    assert "Azure Active Directory only authentication is enabled" in f.detail


async def test_entra_only_on_a_managed_instance() -> None:
    mi_id = f"{w.RG_ID}/providers/Microsoft.Sql/managedInstances/sales-mi"
    world = w.base_world()
    w.with_source(
        world,
        w.data_source("sales-sql", "AzureSqlDatabaseManagedInstance", mi_id),
        resources=[
            {"id": mi_id, "name": "sales-mi", "type": "Microsoft.Sql/managedInstances", "properties": {}},
            {
                "id": f"{mi_id}/azureADOnlyAuthentications/Default",
                "name": "Default",
                "type": "Microsoft.Sql/managedInstances/azureADOnlyAuthentications",
                "properties": {"azureADOnlyAuthentication": True},
            },
        ],
    )
    world = _sql_login_world("AzureSqlDatabaseManagedInstance", world=world)
    [f] = await _run(world, "sales-sql")
    assert f.status is Status.FAIL
    assert f"az sql mi ad-only-auth disable --resource-group {w.RG} --name sales-mi" in f.fix


@pytest.mark.parametrize("where", ["workspace", "child"])
async def test_entra_only_on_a_synapse_workspace(where: str) -> None:
    world = w.base_world()
    workspace = w.synapse_workspace()
    extra = []
    if where == "workspace":
        workspace["properties"]["azureADOnlyAuthentication"] = True
    else:
        extra.append(_entra_only(w.SYNAPSE_ID, True, name="default"))
    w.with_source(
        world,
        w.data_source("sales-sql", "AzureSynapseWorkspace", w.SYNAPSE_ID),
        resources=[workspace, *extra],
    )
    world = _sql_login_world("AzureSynapseWorkspace", world=world)
    [f] = await _run(world, "sales-sql")
    assert f.status is Status.FAIL
    assert f"az synapse ad-only-auth disable --resource-group {w.RG} --workspace-name sales-syn" in f.fix


async def test_synapse_sql_login_without_entra_only_passes() -> None:
    world = w.base_world()
    w.with_source(
        world,
        w.data_source("sales-sql", "AzureSynapseWorkspace", w.SYNAPSE_ID),
        resources=[w.synapse_workspace()],
    )
    [f] = await _run(_sql_login_world("AzureSynapseWorkspace", world=world), "sales-sql")
    assert f.status is Status.PASS


async def test_msi_scan_on_an_entra_only_server_is_unaffected_and_reads_no_setting() -> None:
    world = w.sql_world()
    world["resources"].append(_entra_only(w.SQL_ID, True))
    fake = FakeWorld(world)
    [f] = await source_access.run(await fake.target("sales-sql"))
    assert f.status is Status.WARN  # the database user cannot be seen: same as without Entra-only
    assert fake.calls[f"arm.resource:{w.SQL_ID.lower()}/azureadonlyauthentications/default"] == 0


# A pass never names a problem -------------------------------------------------------------------------------


async def test_pass_titles_name_no_problem() -> None:
    worlds = []
    blob = w.adls_world()
    blob["roleAssignments"].append(w.assignment(w.STORAGE_ID, w.BLOB_DATA_READER))
    worlds.append((blob, "sales-adls"))
    worlds.append((_sql_login_world(), "sales-sql"))
    key = w.adls_world(shared_key=True)
    w.pv(key)["scans"]["sales-adls"] = [
        w.scan("weekly", "AdlsGen2Credential", credential="k", credential_type="AccountKey")
    ]
    w.pv(key)["credentials"].append(w.credential("k", "AccountKey", {"accountKey": w.kv_secret_ref("k")}))
    worlds.append((key, "sales-adls"))
    for world, source in worlds:
        [f] = await _run(world, source)
        assert f.status is Status.PASS, f.title
        lowered = f.title.lower()
        assert not any(
            word in lowered for word in ("no ", "not", "cannot", "refuse", "deny", "denied", "only")
        ), f.title


async def test_unreadable_deny_assignments_leave_the_pass_with_a_caveat() -> None:
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(w.STORAGE_ID, w.BLOB_DATA_READER))
    fake = FakeWorld(world)
    fake.fail["arm.deny_assignments"] = GatewayError(
        "list deny assignments", status=403, permission="Microsoft.Authorization/denyAssignments/read"
    )
    [f] = await source_access.run(await fake.target("sales-adls"))
    assert f.status is Status.PASS and "Deny assignments could not be read" in f.detail
