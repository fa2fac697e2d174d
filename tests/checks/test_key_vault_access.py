"""key-vault-access: Purview's MSI has Get and List on secrets (access policies or RBAC); vault firewall."""

from __future__ import annotations

from typing import Any

import pytest

from checks import fixes
from checks import sections as s
from checks.catalogue import key_vault_access
from checks.errors import GatewayError
from checks.model import Finding, Status
from tests.checks import kv_worlds as kv
from tests.checks import worlds as w
from tests.fakes import FakeWorld

SET_POLICY = f"az keyvault set-policy --name {kv.VAULT} --object-id {w.PURVIEW_MSI} --secret-permissions"
ASSIGN = (
    f"VAULT={kv.VAULT_ID}\naz role assignment create \\\n  --assignee-object-id {w.PURVIEW_MSI} \\\n"
    "  --assignee-principal-type ServicePrincipal \\\n  --role 'Key Vault Secrets User' \\\n"
    '  --scope "$VAULT"'
)
CUSTOM_GUID = "eeeeeeee-0000-0000-0000-000000000001"


async def _run(world: dict[str, Any], fake: FakeWorld | None = None) -> list[Finding]:
    fake = fake or FakeWorld(world)
    return await key_vault_access.run(await fake.target(kv.SOURCE))


def _policy_world(*policies: dict[str, Any]) -> dict[str, Any]:
    return kv.kv_world(vault_resource=kv.vault(policies=list(policies)))


def _rbac_world(*assignments: dict[str, Any]) -> dict[str, Any]:
    world = kv.kv_world(vault_resource=kv.vault(rbac=True, policies=[kv.policy(w.PURVIEW_MSI, "all")]))
    world["roleAssignments"].extend(assignments)
    return world


# --- access policies -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "perms", [("all",), ("Get", "List"), ("GET", "list"), ("get", "list", "set")], ids=str
)
async def test_access_policy_with_get_and_list_passes(perms: tuple[str, ...]) -> None:
    [f] = await _run(_policy_world(kv.policy(w.PURVIEW_MSI, *perms)))
    assert f.status is Status.PASS and f.section == s.KEY_VAULT_ACCESS and f.scan == kv.SCAN
    assert w.ACCOUNT in f.title and kv.VAULT in f.title and w.PURVIEW_MSI in f.detail
    assert f.evidence["model"] == "accessPolicy"
    assert f.evidence["secretPermissions"] == sorted(p.lower() for p in perms)
    assert f.evidence["identity"]["objectId"] == w.PURVIEW_MSI


async def test_object_id_matches_case_insensitively() -> None:
    [f] = await _run(_policy_world(kv.policy(w.PURVIEW_MSI.upper(), "Get", "List")))
    assert f.status is Status.PASS


async def test_get_without_list_fails_naming_the_missing_permission_and_keeping_others() -> None:
    [f] = await _run(_policy_world(kv.policy(w.PURVIEW_MSI, "Get", "Set")))
    assert f.status is Status.FAIL
    assert "has Get but not List on secrets" in f.title and kv.VAULT in f.title
    assert f"(object id {w.PURVIEW_MSI})" in f.detail
    assert f.fix == [fixes.wrap(f"{SET_POLICY} get list set")]


async def test_list_without_get_fails() -> None:
    [f] = await _run(_policy_world(kv.policy(w.PURVIEW_MSI, "list")))
    assert f.status is Status.FAIL and "has List but not Get" in f.title


async def test_not_on_the_access_policies_fails() -> None:
    [f] = await _run(_policy_world(kv.policy(w.USER_OID, "all")))
    assert f.status is Status.FAIL and "has no access policy" in f.title
    assert f.fix == [fixes.wrap(f"{SET_POLICY} get list")] and f.evidence["policyEntries"] == 0


async def test_compound_entry_for_an_application_does_not_count() -> None:
    [f] = await _run(_policy_world(kv.policy(w.PURVIEW_MSI, "all", application_id=w.SP_APP_ID)))
    assert f.status is Status.FAIL


# --- RBAC --------------------------------------------------------------------------------------------
async def test_rbac_vault_ignores_access_policies_and_fails_without_role() -> None:
    world = _rbac_world(w.assignment(kv.VAULT_ID, w.READER))
    [f] = await _run(world)
    assert f.status is Status.FAIL and "has neither Get nor List" in f.title
    assert f.fix == [ASSIGN]
    assert "getSecret/action or Microsoft.KeyVault/vaults/secrets/readMetadata/action" in f.detail
    assert f.evidence["model"] == "rbac" and f.evidence["getSecret"]["granted"] is False


async def test_rbac_secrets_user_through_a_group_passes() -> None:
    world = _rbac_world(w.assignment(w.RG_ID, w.KV_SECRETS_USER, w.GROUP_OID, principal_type="Group"))
    w.join_group(world, w.PURVIEW_MSI, w.GROUP_OID)
    [f] = await _run(world)
    assert f.status is Status.PASS
    assert f.evidence["getSecret"]["via"][0]["principalId"] == w.GROUP_OID
    assert f.evidence["readMetadata"]["granted"] is True


async def test_rbac_custom_role_with_wildcard_data_actions_passes() -> None:
    world = _rbac_world(w.assignment(kv.VAULT_ID, CUSTOM_GUID))
    world["roleDefinitions"].append(
        w.custom_role(CUSTOM_GUID, "Vault secrets any", data_actions=["Microsoft.KeyVault/vaults/secrets/*"])
    )
    [f] = await _run(world)
    assert f.status is Status.PASS and f.evidence["getSecret"]["via"][0]["roleName"] == "Vault secrets any"


async def test_rbac_key_vault_reader_has_list_but_not_get() -> None:
    key_vault_reader = "21090545-7ca7-4776-b22c-e363652d74d2"
    [f] = await _run(_rbac_world(w.assignment(kv.VAULT_ID, key_vault_reader)))
    assert f.status is Status.FAIL and "has List but not Get" in f.title
    assert "getSecret/action." in f.detail


async def test_rbac_condition_warns() -> None:
    world = _rbac_world(w.assignment(kv.VAULT_ID, w.KV_SECRETS_USER, condition="@Resource[name] == 'x'"))
    [f] = await _run(world)
    assert f.status is Status.WARN and "only under a condition" in f.title and f.fix == [ASSIGN]


async def test_rbac_unreadable_assignments_is_unknown() -> None:
    fake = FakeWorld(_rbac_world())
    fake.fail["arm.role_assignments"] = GatewayError(
        "list role assignments", status=403, code="AuthorizationFailed", permission="roleAssignments/read"
    )
    [f] = await _run({}, fake)
    assert f.status is Status.UNKNOWN and "list role assignments" in f.detail
    assert "roleAssignments/read" in f.detail and f.evidence["vaultId"] == kv.VAULT_ID


# --- network -----------------------------------------------------------------------------------------
def _closed(**vault: Any) -> dict[str, Any]:
    """A vault whose firewall denies by default and lets no trusted service bypass it."""
    return kv.kv_world(vault_resource=kv.vault(**{"default_action": "Deny", "bypass": "None", **vault}))


async def test_firewall_without_bypass_or_private_path_fails_for_the_azure_ir() -> None:
    [access, network] = await _run(_closed())
    assert access.status is Status.PASS
    assert network.status is Status.FAIL and network.scan == kv.SCAN
    assert "no trusted-services exception, no private path" in network.title
    assert key_vault_access.TRUSTED_SERVICES_DOC in network.detail
    assert network.fix == [f"az keyvault update --name {kv.VAULT} --bypass AzureServices"]
    assert network.evidence["network"]["networkAcls"]["defaultAction"] == "Deny"
    assert network.evidence["runtime"]["kind"] == "azure"


@pytest.mark.parametrize(
    "vault",
    [
        {"default_action": "Deny", "bypass": "AzureServices"},
        {"default_action": "Deny", "bypass": "AzureServices", "public": "Disabled"},
        {"default_action": "Allow", "bypass": "AzureServices", "public": "Disabled"},
        {"default_action": "Allow", "bypass": "None"},
    ],
    ids=["firewall-with-bypass", "disabled-with-bypass", "disabled-default-allow-bypass", "open"],
)
async def test_purview_as_a_trusted_service_or_an_open_vault_is_fine(vault: dict[str, Any]) -> None:
    findings = await _run(kv.kv_world(vault_resource=kv.vault(**vault)))
    assert [f.status for f in findings] == [Status.PASS]


async def test_missing_bypass_is_the_default_azure_services() -> None:
    world = _closed()
    del world["resources"][-1]["properties"]["networkAcls"]["bypass"]
    assert [f.status for f in await _run(world)] == [Status.PASS]


async def test_public_access_disabled_without_bypass_fails() -> None:
    [_, network] = await _run(_closed(default_action="Allow", public="Disabled"))
    assert network.status is Status.FAIL and "public network access disabled" in network.detail


@pytest.mark.parametrize("path", ["private-endpoint", "ip-rule"])
async def test_a_private_endpoint_or_ip_rule_on_a_closed_vault_is_a_warning(path: str) -> None:
    world = _closed()
    props = world["resources"][-1]["properties"]
    if path == "private-endpoint":
        props["privateEndpointConnections"] = [kv.private_endpoint_connection("pe-kv")]
    else:
        props["networkAcls"]["ipRules"] = [{"value": "203.0.113.0/27"}]
    [_, network] = await _run(world)
    assert network.status is Status.WARN and "may not reach it" in network.title


async def test_pending_private_endpoint_is_no_path() -> None:
    world = _closed()
    world["resources"][-1]["properties"]["privateEndpointConnections"] = [
        kv.private_endpoint_connection("pe-kv", "Pending")
    ]
    [_, network] = await _run(world)
    assert network.status is Status.FAIL


async def test_perimeter_overrides_the_bypass_and_warns() -> None:
    [_, network] = await _run(kv.kv_world(vault_resource=kv.vault(public="SecuredByPerimeter")))
    assert network.status is Status.WARN and "network security perimeter" in network.title


async def test_self_hosted_runtime_without_bypass_is_a_warning_saying_what_to_verify() -> None:
    world = _closed()
    w.pv(world)["scans"][kv.SOURCE] = [kv.secret_scan(ir="shir-1")]
    w.pv(world)["integrationRuntimes"].append(w.integration_runtime("shir-1", "SelfHosted"))
    [_, network] = await _run(world)
    assert network.status is Status.WARN and "self-hosted integration runtime shir-1" in network.title
    assert network.fix[0] == f"az keyvault update --name {kv.VAULT} --bypass AzureServices"
    assert f"nslookup {kv.VAULT}.vault.azure.net" in network.fix
    assert key_vault_access.PURVIEW_FIREWALL_DOC in network.detail


def _managed(status: str | None) -> dict[str, Any]:
    world = _closed()
    w.pv(world)["scans"][kv.SOURCE] = [kv.secret_scan(ir="mvnet-ir")]
    w.pv(world)["integrationRuntimes"].append(w.integration_runtime("mvnet-ir", "Managed"))
    endpoints = [] if status is None else [w.managed_private_endpoint("mpe-kv", kv.VAULT_ID, status, "vault")]
    w.pv(world)["managedPrivateEndpoints"]["default"] = endpoints
    return world


async def test_managed_vnet_runtime_with_an_approved_endpoint_to_the_vault_is_fine() -> None:
    assert [f.status for f in await _run(_managed("Approved"))] == [Status.PASS]


@pytest.mark.parametrize("status", ["Pending", None])
async def test_managed_vnet_runtime_without_an_approved_endpoint_fails(status: str | None) -> None:
    [_, network] = await _run(_managed(status))
    assert network.status is Status.FAIL
    assert network.evidence["managedPrivateEndpoint"]["status"] == (status or None)


async def test_unreadable_runtime_is_unknown() -> None:
    world = _closed()
    w.pv(world)["scans"][kv.SOURCE] = [kv.secret_scan(ir="gone-ir")]
    [_, network] = await _run(world)
    assert network.status is Status.UNKNOWN and "gone-ir" in network.title


async def test_open_vault_reads_no_runtime() -> None:
    world = kv.kv_world()
    w.pv(world)["scans"][kv.SOURCE] = [kv.secret_scan(ir="shir-1")]
    fake = FakeWorld(world)
    await _run({}, fake)
    assert not any(c.startswith(("purview.ir", "purview.mpe")) for c in fake.calls)


# --- access policies naming groups ---------------------------------------------------------------------
async def test_access_policy_for_a_nested_group_grants_its_members() -> None:
    world = _policy_world(kv.policy(w.OUTER_GROUP_OID, "Get", "List"))
    w.join_group(world, w.PURVIEW_MSI, w.GROUP_OID)
    w.join_group(world, w.GROUP_OID, w.OUTER_GROUP_OID)
    [f] = await _run(world)
    assert f.status is Status.PASS and w.OUTER_GROUP_OID in f.detail
    assert f.evidence["groupEntries"] == [{"objectId": w.OUTER_GROUP_OID, "secrets": ["get", "list"]}]


async def test_group_entry_adds_the_missing_permission_to_a_direct_one() -> None:
    world = _policy_world(kv.policy(w.PURVIEW_MSI, "Get"), kv.policy(w.GROUP_OID, "List"))
    w.join_group(world, w.PURVIEW_MSI, w.GROUP_OID)
    [f] = await _run(world)
    assert f.status is Status.PASS and f.evidence["secretPermissions"] == ["get", "list"]


async def test_group_the_identity_is_not_in_does_not_count() -> None:
    [f] = await _run(_policy_world(kv.policy(w.PURVIEW_MSI, "Get"), kv.policy(w.GROUP_OID, "List")))
    assert f.status is Status.FAIL and "has Get but not List" in f.title


async def test_unreadable_group_membership_is_unknown_naming_graph_never_fail() -> None:
    fake = FakeWorld(_policy_world(kv.policy(w.PURVIEW_MSI, "Get"), kv.policy(w.GROUP_OID, "List")))
    fake.fail["graph.groups"] = GatewayError(
        "list the groups of the Purview identity in Microsoft Graph",
        status=403,
        code="Authorization_RequestDenied",
    )
    [f] = await _run({}, fake)
    assert f.status is Status.UNKNOWN and "List" in f.title
    assert "Microsoft Graph" in f.detail and "GroupMember.Read.All" in f.detail
    assert f.evidence["candidateEntries"] == [{"objectId": w.GROUP_OID, "secrets": ["list"]}]


async def test_graph_is_not_asked_when_no_other_entry_could_fill_the_gap() -> None:
    fake = FakeWorld(_policy_world(kv.policy(w.PURVIEW_MSI, "Get", "List"), kv.policy(w.GROUP_OID, "all")))
    [f] = await _run({}, fake)
    assert f.status is Status.PASS
    fake = FakeWorld(_policy_world(kv.policy(w.PURVIEW_MSI, "Get"), kv.policy(w.GROUP_OID, "Set")))
    [f] = await _run({}, fake)
    assert f.status is Status.FAIL
    assert not any(c.startswith("graph.") for c in fake.calls)


# --- RBAC on single secrets ----------------------------------------------------------------------------
KV_READER = "21090545-7ca7-4776-b22c-e363652d74d2"
SECRET_SCOPE = f"{kv.VAULT_ID}/secrets/{kv.SECRET}"


async def test_secrets_user_on_the_secret_itself_gets_it_but_lists_only_it() -> None:
    [f] = await _run(_rbac_world(w.assignment(SECRET_SCOPE, w.KV_SECRETS_USER)))
    assert f.status is Status.WARN and "List only on them" in f.title
    assert f.evidence["getSecretOnSecrets"] == [kv.SECRET]
    assert f.fix[0].startswith("Give ") and "never values" in f.fix[0]
    assert f.fix[1] == ASSIGN.replace("Key Vault Secrets User", "Key Vault Reader")


async def test_secret_scope_get_with_vault_wide_list_passes() -> None:
    world = _rbac_world(w.assignment(SECRET_SCOPE, w.KV_SECRETS_USER), w.assignment(kv.VAULT_ID, KV_READER))
    [f] = await _run(world)
    assert f.status is Status.PASS and f"on secret {kv.SECRET} itself" in f.detail


async def test_get_on_another_secret_only_does_not_count() -> None:
    [f] = await _run(_rbac_world(w.assignment(f"{kv.VAULT_ID}/secrets/other", w.KV_SECRETS_USER)))
    assert f.status is Status.FAIL and "has neither Get nor List" in f.title


async def test_get_on_one_of_two_secrets_the_scans_read_fails_naming_the_other() -> None:
    world = _rbac_world(w.assignment(SECRET_SCOPE, w.KV_SECRETS_USER), w.assignment(kv.VAULT_ID, KV_READER))
    kv.add_secret_scan(world, "weekly", "api-key")
    [f] = await _run(world)
    assert f.status is Status.FAIL
    assert f"has Get on secret {kv.SECRET} but not on api-key" in f.title


# --- scans and identity ------------------------------------------------------------------------------
async def test_one_finding_per_vault_shared_by_scans() -> None:
    world = kv.kv_world(scans=[kv.secret_scan("nightly"), kv.secret_scan("weekly")])
    [f] = await _run(world)
    assert f.scan is None and f.evidence["scans"] == ["nightly", "weekly"]


async def test_msi_scans_are_skipped_and_no_identity_needed() -> None:
    world = kv.kv_world(
        scans=[w.scan("weekly", "AzureSqlDatabaseMsi"), w.scan("daily", "AzureSqlDatabaseMsi")]
    )
    findings = await _run(world)
    assert [(f.status, f.scan) for f in findings] == [(Status.SKIPPED, "weekly"), (Status.SKIPPED, "daily")]


async def test_missing_purview_identity_is_unknown() -> None:
    world = kv.kv_world()
    del world["resources"][0]["identity"]
    [f] = await _run(world)
    assert f.status is Status.UNKNOWN and f.evidence["vaults"] == [kv.VAULT]


async def test_broken_chain_is_left_to_key_vault_secret() -> None:
    world = kv.kv_world()
    w.pv(world)["azureKeyVaults"] = []
    [f] = await _run(world)
    assert f.status is Status.SKIPPED and "see the key-vault-secret finding" in f.detail
