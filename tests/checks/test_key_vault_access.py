"""key-vault-access: Purview's MSI has Get and List on secrets (access policies or RBAC); vault firewall."""

from __future__ import annotations

from typing import Any

import pytest

from checks import sections as s
from checks.catalogue import key_vault_access
from checks.errors import GatewayError
from checks.model import Finding, Status
from tests.checks import kv_worlds as kv
from tests.checks import worlds as w
from tests.fakes import FakeWorld

SET_POLICY = f"az keyvault set-policy --name {kv.VAULT} --object-id {w.PURVIEW_MSI} --secret-permissions"
ASSIGN = (
    f"az role assignment create --assignee-object-id {w.PURVIEW_MSI} --assignee-principal-type "
    f'ServicePrincipal --role "Key Vault Secrets User" --scope {kv.VAULT_ID}'
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
    assert f.fix == [f"{SET_POLICY} get list set"]


async def test_list_without_get_fails() -> None:
    [f] = await _run(_policy_world(kv.policy(w.PURVIEW_MSI, "list")))
    assert f.status is Status.FAIL and "has List but not Get" in f.title


async def test_not_on_the_access_policies_fails() -> None:
    [f] = await _run(_policy_world(kv.policy(w.USER_OID, "all")))
    assert f.status is Status.FAIL and "has no access policy" in f.title
    assert f.fix == [f"{SET_POLICY} get list"] and f.evidence["policyEntries"] == 0


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


# --- firewall ----------------------------------------------------------------------------------------
async def test_firewall_deny_without_trusted_services_warns_separately() -> None:
    [access, firewall] = await _run(
        kv.kv_world(vault_resource=kv.vault(default_action="Deny", bypass="None"))
    )
    assert access.status is Status.PASS
    assert firewall.status is Status.WARN and "trusted Microsoft services" in firewall.detail
    assert firewall.fix[0] == f"az keyvault update --name {kv.VAULT} --bypass AzureServices"
    assert firewall.evidence["network"]["networkAcls"]["defaultAction"] == "Deny"


async def test_firewall_deny_with_trusted_services_is_fine() -> None:
    findings = await _run(kv.kv_world(vault_resource=kv.vault(default_action="Deny", bypass="AzureServices")))
    assert [f.status for f in findings] == [Status.PASS]


async def test_public_access_disabled_warns() -> None:
    [_, firewall] = await _run(kv.kv_world(vault_resource=kv.vault(public="Disabled")))
    assert firewall.status is Status.WARN and "public network access is disabled" in firewall.title


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
