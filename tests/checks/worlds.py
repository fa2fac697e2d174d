"""Builders of FakeWorld world dicts (the sandbox world format of design.md) for the checks' unit tests.

Shared between test modules: only add to this file, never change what a builder returns for existing
arguments. Every builder returns plain JSON-like dicts, so a test can tweak any field afterwards.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

Json = dict[str, Any]

TENANT = "00000000-0000-0000-0000-00000000aaaa"
SUB = "11111111-1111-1111-1111-111111111111"
SUB_ID = f"/subscriptions/{SUB}"
RG = "rg-data"
RG_ID = f"{SUB_ID}/resourceGroups/{RG}"
ACCOUNT = "contoso-pv"
ACCOUNT_ID = f"{SUB_ID}/resourceGroups/rg-gov/providers/Microsoft.Purview/accounts/{ACCOUNT}"

PURVIEW_MSI = "aaaaaaaa-0000-0000-0000-000000000001"
UAMI_OID = "aaaaaaaa-0000-0000-0000-000000000002"
SP_OID = "aaaaaaaa-0000-0000-0000-000000000003"
SP_APP_ID = "bbbbbbbb-0000-0000-0000-000000000003"
USER_OID = "aaaaaaaa-0000-0000-0000-000000000004"
USER_UPN = "alice@contoso.com"
GROUP_OID = "cccccccc-0000-0000-0000-000000000001"
OUTER_GROUP_OID = "cccccccc-0000-0000-0000-000000000002"

STORAGE_NAME = "salesadls"
STORAGE_ID = f"{RG_ID}/providers/Microsoft.Storage/storageAccounts/{STORAGE_NAME}"
SQL_NAME = "sales-sql"
SQL_ID = f"{RG_ID}/providers/Microsoft.Sql/servers/{SQL_NAME}"
SYNAPSE_ID = f"{RG_ID}/providers/Microsoft.Synapse/workspaces/sales-syn"
COSMOS_ID = f"{RG_ID}/providers/Microsoft.DocumentDB/databaseAccounts/sales-cosmos"

# built-in role GUIDs (checks/data/builtin-roles.json)
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
KV_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"


def base_world() -> Json:
    """A tenant with one subscription, the Purview account (with its MSI), and no data sources yet."""
    return {
        "tenantId": TENANT,
        "now": "2026-11-28T08:00:00Z",
        "principals": [
            {"id": PURVIEW_MSI, "type": "ServicePrincipal", "displayName": ACCOUNT, "memberOf": []},
            {"id": UAMI_OID, "type": "ServicePrincipal", "displayName": "scan-uami", "memberOf": []},
            {"id": SP_OID, "type": "ServicePrincipal", "displayName": "scan-sp", "appId": SP_APP_ID},
            {"id": USER_OID, "type": "User", "displayName": "Alice", "userPrincipalName": USER_UPN},
            {"id": GROUP_OID, "type": "Group", "displayName": "data-readers", "memberOf": []},
            {"id": OUTER_GROUP_OID, "type": "Group", "displayName": "all-readers", "memberOf": []},
        ],
        "subscriptions": [{"subscriptionId": SUB, "displayName": "Contoso Data"}],
        "resources": [
            {
                "id": ACCOUNT_ID,
                "name": ACCOUNT,
                "type": "Microsoft.Purview/accounts",
                "location": "westeurope",
                "identity": {"type": "SystemAssigned", "principalId": PURVIEW_MSI, "tenantId": TENANT},
                "properties": {"publicNetworkAccess": "Enabled"},
            }
        ],
        "roleDefinitions": [],
        "roleAssignments": [],
        "policyStates": [],
        "keyVaults": {},
        "purview": {
            ACCOUNT: {
                "dataSources": [],
                "scans": {},
                "runs": {},
                "credentials": [],
                "azureKeyVaults": [],
                "integrationRuntimes": [],
                "integrationRuntimeStatus": {},
                "managedPrivateEndpoints": {},
            }
        },
    }


def pv(world: Json) -> Json:
    """The Purview account's part of a world."""
    return world["purview"][ACCOUNT]  # type: ignore[no-any-return]


# --- ARM resources ---------------------------------------------------------------------------------


def storage_account(
    name: str = STORAGE_NAME,
    *,
    public: str | None = "Enabled",
    default_action: str = "Allow",
    bypass: str = "AzureServices",
    resource_rules: list[str] | None = None,
    shared_key: bool | None = None,
    hns: bool = True,
) -> Json:
    props: Json = {
        "isHnsEnabled": hns,
        "networkAcls": {
            "bypass": bypass,
            "defaultAction": default_action,
            "ipRules": [],
            "virtualNetworkRules": [],
            "resourceAccessRules": [{"tenantId": TENANT, "resourceId": r} for r in resource_rules or []],
        },
        "privateEndpointConnections": [],
    }
    if public is not None:
        props["publicNetworkAccess"] = public
    if shared_key is not None:
        props["allowSharedKeyAccess"] = shared_key
    return {
        "id": f"{RG_ID}/providers/Microsoft.Storage/storageAccounts/{name}",
        "name": name,
        "type": "Microsoft.Storage/storageAccounts",
        "kind": "StorageV2",
        "location": "westeurope",
        "properties": props,
    }


def sql_server(
    name: str = SQL_NAME, *, public: str = "Enabled", admin: bool = True, rg_id: str = RG_ID
) -> Json:
    props: Json = {
        "fullyQualifiedDomainName": f"{name}.database.windows.net",
        "publicNetworkAccess": public,
        "privateEndpointConnections": [],
    }
    if admin:
        props["administrators"] = {
            "administratorType": "ActiveDirectory",
            "principalType": "Group",
            "login": "sql-admins",
            "sid": "dddddddd-0000-0000-0000-000000000001",
            "tenantId": TENANT,
            "azureADOnlyAuthentication": False,
        }
    return {
        "id": f"{rg_id}/providers/Microsoft.Sql/servers/{name}",
        "name": name,
        "type": "Microsoft.Sql/servers",
        "location": "westeurope",
        "properties": props,
    }


def synapse_workspace(*, public: str = "Enabled") -> Json:
    return {
        "id": SYNAPSE_ID,
        "name": "sales-syn",
        "type": "Microsoft.Synapse/workspaces",
        "location": "westeurope",
        "properties": {"publicNetworkAccess": public},
    }


def cosmos_account(*, public: str = "Enabled", local_auth_disabled: bool = False) -> Json:
    return {
        "id": COSMOS_ID,
        "name": "sales-cosmos",
        "type": "Microsoft.DocumentDB/databaseAccounts",
        "location": "westeurope",
        "properties": {"publicNetworkAccess": public, "disableLocalAuth": local_auth_disabled},
    }


# --- RBAC --------------------------------------------------------------------------------------------


def assignment(
    scope: str,
    role: str,
    principal: str = PURVIEW_MSI,
    *,
    principal_type: str = "ServicePrincipal",
    condition: str | None = None,
    subscription_prefix: bool = True,
) -> Json:
    """An ARM role assignment; `role` is a GUID (built-in or custom), its id with or without a sub prefix."""
    prefix = SUB_ID if subscription_prefix else ""
    props: Json = {
        "scope": scope,
        "roleDefinitionId": f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{role}",
        "principalId": principal,
        "principalType": principal_type,
    }
    if condition is not None:
        props["condition"] = condition
        props["conditionVersion"] = "2.0"
    guid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{scope}|{role}|{principal}|{condition}"))
    return {
        "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}",
        "name": guid,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": props,
    }


def custom_role(
    guid: str,
    name: str,
    *,
    actions: list[str] | None = None,
    not_actions: list[str] | None = None,
    data_actions: list[str] | None = None,
    not_data_actions: list[str] | None = None,
    extra_blocks: list[Json] | None = None,
) -> Json:
    block = {
        "actions": actions or [],
        "notActions": not_actions or [],
        "dataActions": data_actions or [],
        "notDataActions": not_data_actions or [],
    }
    return {
        "id": f"{SUB_ID}/providers/Microsoft.Authorization/roleDefinitions/{guid}",
        "name": guid,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": name,
            "type": "CustomRole",
            "assignableScopes": [SUB_ID],
            "permissions": [block, *(extra_blocks or [])],
        },
    }


def join_group(world: Json, member: str, group: str) -> None:
    """Make `member` (a principal id) a member of `group`."""
    for p in world["principals"]:
        if p["id"] == member:
            p.setdefault("memberOf", []).append(group)


# --- Purview ----------------------------------------------------------------------------------------


def data_source(name: str, kind: str, resource_id: str | None, **props: Any) -> Json:
    properties: Json = {"subscriptionId": SUB, "resourceGroup": RG, **props}
    if resource_id is not None:
        properties["resourceId"] = resource_id
    properties.setdefault("collection", {"referenceName": "sales", "type": "CollectionReference"})
    return {"name": name, "kind": kind, "properties": properties}


def scan(
    name: str,
    kind: str,
    *,
    credential: str | None = None,
    credential_type: str | None = None,
    ir: str | None = None,
) -> Json:
    props: Json = {"scanRulesetName": "AzureStorage", "scanRulesetType": "System", "connectedVia": None}
    if credential is not None:
        props["credential"] = {"referenceName": credential, "credentialType": credential_type}
    if ir is not None:
        props["connectedVia"] = {"referenceName": ir}
    return {"name": name, "kind": kind, "properties": props}


def scan_run(
    status: str,
    end: str,
    *,
    run_id: str | None = None,
    error_message: str | None = None,
    error: Json | None = None,
    notifications: list[str] | None = None,
) -> Json:
    return {
        "id": run_id or f"run-{end}",
        "status": status,
        "startTime": end,
        "endTime": end,
        "runType": "Scheduled",
        "scanLevelType": "Full",
        "errorMessage": error_message,
        "error": error,
        "diagnostics": {
            "notifications": [{"message": m, "code": 0} for m in notifications or []],
            "exceptionCountMap": {},
        },
    }


def credential(name: str, ctype: str, type_properties: Json, *, shape: str = "kind") -> Json:
    """A Purview credential in the spec shape (`kind` top level) or the observed one (`properties.type`)."""
    if shape == "kind":
        return {"name": name, "kind": ctype, "properties": {"typeProperties": type_properties}}
    return {
        "id": f"{ACCOUNT_ID}/credentials/{name}",
        "name": name,
        "type": "Microsoft.Purview/accounts/credentials",
        "properties": {"type": ctype, "typeProperties": type_properties},
    }


def kv_secret_ref(secret: str, store: str = "main-kv", version: str = "") -> Json:
    return {
        "type": "AzureKeyVaultSecret",
        "secretName": secret,
        "secretVersion": version,
        "store": {"referenceName": store, "type": "LinkedServiceReference"},
    }


def integration_runtime(name: str, kind: str, *, vnet: str | None = "default") -> Json:
    if kind == "Managed":
        return {
            "name": name,
            "kind": "Managed",
            "properties": {
                "typeProperties": {"computeProperties": {"location": "westeurope"}},
                "managedVirtualNetworkReference": {
                    "referenceName": vnet,
                    "type": "ManagedVirtualNetworkReference",
                },
            },
        }
    return {"name": name, "kind": "SelfHosted", "properties": {"description": "on-prem"}}


def managed_private_endpoint(name: str, target_id: str, status: str, group: str = "blob") -> Json:
    return {
        "name": name,
        "properties": {
            "connectionState": {"status": status, "description": "", "actionsRequired": "None"},
            "fqdns": [],
            "groupId": group,
            "privateLinkResourceId": target_id,
            "provisioningState": "Succeeded",
        },
    }


def with_source(
    world: Json,
    ds: Json,
    scans: list[Json] | None = None,
    runs: dict[str, list[Json]] | None = None,
    resources: list[Json] | None = None,
) -> Json:
    """Add a data source with its scans, runs (by scan name, newest first) and ARM resources."""
    part = pv(world)
    part["dataSources"].append(ds)
    part["scans"][ds["name"]] = list(scans or [])
    for scan_name, rs in (runs or {}).items():
        part["runs"][f"{ds['name']}/{scan_name}"] = list(rs)
    world["resources"].extend(resources or [])
    return world


def adls_world(**storage: Any) -> Json:
    """`sales-adls` (AdlsGen2) with an MSI scan `weekly` on the Azure IR; storage options: storage_account."""
    world = base_world()
    return with_source(
        world,
        data_source(
            "sales-adls", "AdlsGen2", STORAGE_ID, endpoint=f"https://{STORAGE_NAME}.dfs.core.windows.net/"
        ),
        [scan("weekly", "AdlsGen2Msi")],
        resources=[storage_account(**storage)],
    )


def sql_world(**server: Any) -> Json:
    """`sales-sql` (AzureSqlDatabase, resourceId = the server) with an MSI scan `nightly`."""
    world = base_world()
    return with_source(
        world,
        data_source(
            "sales-sql", "AzureSqlDatabase", SQL_ID, serverEndpoint=f"{SQL_NAME}.database.windows.net"
        ),
        [scan("nightly", "AzureSqlDatabaseMsi")],
        resources=[sql_server(**server)],
    )


def clone(world: Json) -> Json:
    return copy.deepcopy(world)


# --- network (added for private-network / integration-runtime) ---------------------------------------

AZURE_SERVICES_RULE = "AllowAllWindowsAzureIps"


def firewall_rule(
    parent_id: str, name: str = AZURE_SERVICES_RULE, start: str = "0.0.0.0", end: str = "0.0.0.0"
) -> Json:
    """A SQL server's or Synapse workspace's firewall rule (a child resource with its own id); the default
    is the portal's "Allow Azure services and resources to access this server"."""
    synapse = "/microsoft.synapse/" in parent_id.lower()
    provider = "Microsoft.Synapse/workspaces" if synapse else "Microsoft.Sql/servers"
    return {
        "id": f"{parent_id}/firewallRules/{name}",
        "name": name,
        "type": f"{provider}/firewallRules",
        "properties": {"startIpAddress": start, "endIpAddress": end},
    }


def cosmos_firewall(account: Json, ip_rules: list[str], *, vnet_filter: bool = False) -> Json:
    """`account` (a cosmos_account) with IP filtering: `ipRules` and the VNet filter flag."""
    account["properties"]["ipRules"] = [{"ipAddressOrRange": r} for r in ip_rules]
    account["properties"]["isVirtualNetworkFilterEnabled"] = vnet_filter
    account["properties"]["virtualNetworkRules"] = []
    return account


def multi_scan(name: str, kind: str, resource_types: list[str] | None) -> Json:
    """A subscription / resource-group scan covering `resource_types` (keys as written; None: no list)."""
    made = scan(name, kind)
    if resource_types is not None:
        entry = {"scanRulesetType": "System", "resourceNameFilter": None, "credential": None}
        made["properties"]["resourceTypes"] = {t: {"scanRulesetName": t, **entry} for t in resource_types}
    return made


def endpoint(
    name: str, target_id: str, group: str, status: str = "Approved", provisioning: str = "Succeeded"
) -> Json:
    """A managed private endpoint with its sub-resource (`groupId`) and provisioning state."""
    made = managed_private_endpoint(name, target_id, status, group)
    made["properties"]["provisioningState"] = provisioning
    return made


EVERYONE = "00000000-0000-0000-0000-000000000000"


def deny_assignment(
    scope: str,
    *,
    name: str = "System deny assignment created by managed application",
    principals: list[tuple[str, str]] | None = None,
    exclude: list[tuple[str, str]] | None = None,
    actions: list[str] | None = None,
    not_actions: list[str] | None = None,
    data_actions: list[str] | None = None,
    not_data_actions: list[str] | None = None,
    child_scopes: bool = True,
    condition: str | None = None,
    description: str = "Created by Azure for a managed application's resources",
) -> Json:
    """An ARM deny assignment (world key `denyAssignments`); principals as (id, type), Everyone by default."""
    guid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"deny|{scope}|{name}"))
    perm: Json = {
        "actions": actions or [],
        "notActions": not_actions or [],
        "dataActions": data_actions or [],
        "notDataActions": not_data_actions or [],
    }
    if condition is not None:
        perm["condition"], perm["conditionVersion"] = condition, "2.0"
    return {
        "id": f"{scope}/providers/Microsoft.Authorization/denyAssignments/{guid}",
        "name": guid,
        "type": "Microsoft.Authorization/denyAssignments",
        "properties": {
            "denyAssignmentName": name,
            "description": description,
            "permissions": [perm],
            "scope": scope,
            "doNotApplyToChildScopes": not child_scopes,
            "principals": [{"id": i, "type": t} for i, t in principals or [(EVERYONE, "SystemDefined")]],
            "excludePrincipals": [{"id": i, "type": t} for i, t in exclude or []],
            "isSystemProtected": True,
        },
    }
