"""The api-version table, cloud presets, bundled built-in roles and the clients' lifetime."""

from __future__ import annotations

from typing import Any

import pytest

from checks.errors import GatewayError
from checks.gateways.arm import api_version_for, resource_type
from checks.gateways.endpoints import cloud_preset

SUB = "/subscriptions/00000000-0000-0000-0000-000000000001"
RG = f"{SUB}/resourceGroups/rg-1"


@pytest.mark.parametrize(
    ("resource_id", "type_name", "api_version"),
    [
        (SUB, "subscription", "2022-12-01"),
        (SUB + "/", "subscription", "2022-12-01"),
        (RG, "resourceGroup", "2021-04-01"),
        (
            f"{RG}/providers/Microsoft.Storage/storageAccounts/st",
            "Microsoft.Storage/storageAccounts",
            "2023-05-01",
        ),
        (
            f"{RG}/providers/microsoft.storage/STORAGEACCOUNTS/st",
            "microsoft.storage/STORAGEACCOUNTS",
            "2023-05-01",
        ),
        (f"{RG}/providers/Microsoft.Sql/servers/sql1", "Microsoft.Sql/servers", "2021-11-01"),
        (
            f"{RG}/providers/Microsoft.Sql/servers/sql1/databases/db",
            "Microsoft.Sql/servers/databases",
            "2021-11-01",
        ),
        (f"{RG}/providers/Microsoft.Synapse/workspaces/syn", "Microsoft.Synapse/workspaces", "2021-06-01"),
        (
            f"{RG}/providers/Microsoft.DocumentDB/databaseAccounts/cos",
            "Microsoft.DocumentDB/databaseAccounts",
            "2024-11-15",
        ),
        (f"{RG}/providers/Microsoft.KeyVault/vaults/kv", "Microsoft.KeyVault/vaults", "2022-07-01"),
        (f"{RG}/providers/Microsoft.Purview/accounts/pv", "Microsoft.Purview/accounts", "2021-12-01"),
    ],
)
def test_api_version_by_resource_type(resource_id: str, type_name: str, api_version: str) -> None:
    assert resource_type(resource_id) == type_name
    assert api_version_for(type_name, "GET x") == api_version


@pytest.mark.parametrize(
    ("resource_id", "named"),
    [
        (f"{RG}/providers/Microsoft.Web/sites/app", "Microsoft.Web/sites"),
        (
            f"{RG}/providers/Microsoft.Sql/servers/sql1/auditingSettings/d",
            "Microsoft.Sql/servers/auditingSettings",
        ),
        ("/providers/Microsoft.Management/managementGroups/mg", "Microsoft.Management/managementGroups"),
        ("/tenants/x", "(unrecognised id)"),
    ],
)
def test_unknown_types_are_named(resource_id: str, named: str) -> None:
    with pytest.raises(GatewayError) as info:
        api_version_for(resource_type(resource_id), f"GET {resource_id}")
    assert named in info.value.message and info.value.call == f"GET {resource_id}"


def test_cloud_presets() -> None:
    public = cloud_preset("AzurePublicCloud")
    assert public.purview_url("contoso-pv") == "https://contoso-pv.purview.azure.com"
    assert (public.purview_scope, public.call_timeout, public.keyvault_verify_challenge) == (
        "https://purview.azure.net/.default",
        20.0,
        True,
    )
    china = cloud_preset("AzureChinaCloud")
    assert china.arm_url == "https://management.chinacloudapi.cn"
    assert china.purview_url("a") == "https://a.purview.azure.cn"
    assert china.graph_url == "https://microsoftgraph.chinacloudapi.cn"
    gov = cloud_preset("AzureUSGovernment")
    assert (gov.arm_url, gov.graph_url) == (
        "https://management.usgovcloudapi.net",
        "https://graph.microsoft.us",
    )
    assert gov.purview_scope == "https://purview.azure.us/.default"
    with pytest.raises(ValueError, match="AzurePublicCloud, AzureChinaCloud, AzureUSGovernment"):
        cloud_preset("AzureGermanCloud")


async def test_builtin_roles_fall_back_to_the_bundled_table(fake: Any, clients: Any) -> None:
    # nothing routed: ARM fails every read, so the bundled copies answer (ARM's own are tested elsewhere)
    reader = await clients.arm.role_definition(
        "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/ACDD72A7-3385-48EF-BD42-F606FBA81AE7"
    )
    assert reader.role_name == "Reader" and reader.permissions[0].actions == ("*/read",)
    assert reader.source == "bundled"
    blob = await clients.arm.role_definition("ba92f5b4-2d11-453d-a403-e96b0029c9fe")
    assert blob.role_name == "Storage Blob Data Contributor" and blob.role_type == "BuiltInRole"


async def test_role_definition_404(fake: Any, clients: Any) -> None:
    from checks.errors import NotFoundError

    rid = "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/11111111-2222-3333-4444-5555"
    fake.json("GET", rid, {"error": {"code": "RoleDefinitionDoesNotExist", "message": "gone"}}, status=404)
    with pytest.raises(NotFoundError) as info:
        await clients.arm.role_definition(rid)
    assert info.value.code == "RoleDefinitionDoesNotExist"


async def test_close_keeps_session_and_credential(
    fake: Any, session: Any, credential: Any, make_clients: Any
) -> None:
    clients = await make_clients()
    fake.vault("/kv/v1/secrets/s1/versions", {"value": []})
    fake.json("GET", "/purview/contoso-pv/scan/datasources", {"value": []})
    gateways = clients.gateways(
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Purview/accounts/contoso-pv"
    )
    assert gateways.purview is clients.gateways("Contoso-PV").purview  # one gateway per account
    assert await gateways.purview.data_sources() == []
    assert await gateways.keyvault.secret_versions(f"{fake.url}/kv/v1", "s1") == []
    await clients.close()
    assert not session.closed and not credential.closed
    assert {s for scopes in credential.scopes for s in scopes} == {
        "https://purview.azure.net/.default",
        "https://vault.azure.net/.default",
    }
