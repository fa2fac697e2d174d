"""World builders for the Key Vault and "scans no longer run" checks, on top of `tests.checks.worlds`.

The default world: `sales-sql` (AzureSqlDatabase) with one credential scan `nightly` whose SqlAuth
credential `sql-cred` keeps its password in secret `sql-password` of Key Vault `kv-sales` (access-policy
vault, Purview's MSI has Get and List), reached through Key Vault connection `main-kv`.
"""

from __future__ import annotations

from typing import Any

from tests.checks import worlds as w

Json = dict[str, Any]

VAULT = "kv-sales"
VAULT_URI = f"https://{VAULT}.vault.azure.net/"
VAULT_ID = f"{w.RG_ID}/providers/Microsoft.KeyVault/vaults/{VAULT}"
CONNECTION = "main-kv"
CREDENTIAL = "sql-cred"
SECRET = "sql-password"
SCAN = "nightly"
SOURCE = "sales-sql"
SECRET_SCAN_KIND = "AzureSqlDatabaseCredential"


def policy(object_id: str, *secrets: str, application_id: str | None = None) -> Json:
    return {
        "tenantId": w.TENANT,
        "objectId": object_id,
        "applicationId": application_id,
        "permissions": {"keys": [], "secrets": list(secrets), "certificates": [], "storage": []},
    }


def vault(
    name: str = VAULT,
    *,
    rbac: bool = False,
    policies: list[Json] | None = None,
    default_action: str = "Allow",
    bypass: str = "AzureServices",
    public: str | None = "Enabled",
) -> Json:
    props: Json = {
        "tenantId": w.TENANT,
        "sku": {"family": "A", "name": "standard"},
        "enableRbacAuthorization": rbac,
        "accessPolicies": policies if policies is not None else [policy(w.PURVIEW_MSI, "get", "list")],
        "networkAcls": {
            "bypass": bypass,
            "defaultAction": default_action,
            "ipRules": [],
            "virtualNetworkRules": [],
        },
        "vaultUri": f"https://{name}.vault.azure.net/",
    }
    if public is not None:
        props["publicNetworkAccess"] = public
    return {
        "id": f"{w.RG_ID}/providers/Microsoft.KeyVault/vaults/{name}",
        "name": name,
        "type": "Microsoft.KeyVault/vaults",
        "location": "westeurope",
        "properties": props,
    }


def version(
    v: str,
    *,
    enabled: bool | None = True,
    created: str = "2026-10-01T00:00:00Z",
    updated: str | None = None,
    exp: str | None = None,
    nbf: str | None = None,
) -> Json:
    attributes: Json = {"enabled": enabled, "created": created, "updated": updated or created}
    if exp is not None:
        attributes["exp"] = exp
    if nbf is not None:
        attributes["nbf"] = nbf
    return {"version": v, "attributes": attributes}


def sql_credential(
    name: str = CREDENTIAL,
    *,
    secret: str = SECRET,
    pinned: str = "",
    store: str = CONNECTION,
    shape: str = "kind",
) -> Json:
    return w.credential(
        name, "SqlAuth", {"user": "scanner", "password": w.kv_secret_ref(secret, store, pinned)}, shape=shape
    )


def secret_scan(name: str = SCAN, *, credential: str = CREDENTIAL, ir: str | None = None) -> Json:
    return w.scan(name, SECRET_SCAN_KIND, credential=credential, credential_type="SqlAuth", ir=ir)


def kv_world(
    *,
    versions: list[Json] | None = None,
    pinned: str = "",
    shape: str = "kind",
    scans: list[Json] | None = None,
    runs: dict[str, list[Json]] | None = None,
    vault_resource: Json | None = None,
) -> Json:
    """The default world above; every part can be replaced or tweaked afterwards."""
    world = w.sql_world()
    part = w.pv(world)
    part["scans"][SOURCE] = scans if scans is not None else [secret_scan()]
    for scan_name, rs in (runs or {}).items():
        part["runs"][f"{SOURCE}/{scan_name}"] = rs
    part["credentials"].append(sql_credential(pinned=pinned, shape=shape))
    part["azureKeyVaults"].append({"name": CONNECTION, "properties": {"baseUrl": VAULT_URI}})
    world["resources"].append(vault_resource if vault_resource is not None else vault())
    world["keyVaults"][VAULT] = {"secrets": {SECRET: versions if versions is not None else [version("v1")]}}
    return world


def add_secret_scan(
    world: Json, scan: str, secret: str, *, credential: str | None = None, versions: list[Json] | None = None
) -> Json:
    """Another credential scan of `sales-sql` whose credential reads `secret` of the same vault."""
    credential = credential or f"{secret}-cred"
    part = w.pv(world)
    part["scans"][SOURCE].append(secret_scan(scan, credential=credential))
    part["credentials"].append(sql_credential(credential, secret=secret))
    world["keyVaults"][VAULT]["secrets"][secret] = versions if versions is not None else [version("v1")]
    return world


def deleted(versions: list[Json], when: str = "2026-11-20T00:00:00Z") -> list[Json]:
    """The versions of a soft-deleted secret (every version carries the deletion's date)."""
    return [{**v, "deletedDate": when} for v in versions]


def private_endpoint_connection(name: str, status: str = "Approved") -> Json:
    return {
        "id": f"{VAULT_ID}/privateEndpointConnections/{name}",
        "name": name,
        "properties": {
            "privateEndpoint": {"id": f"{w.RG_ID}/providers/Microsoft.Network/privateEndpoints/{name}"},
            "privateLinkServiceConnectionState": {"status": status, "description": ""},
            "provisioningState": "Succeeded",
        },
    }
