"""RBAC evaluation: wildcards, notActions, inheritance, groups, conditions, id shapes, failures."""

from __future__ import annotations

import pytest

from checks import rbac
from checks.errors import GatewayError, NotFoundError
from checks.gateways.api import Permission, RoleDefinition
from tests.checks import worlds as w
from tests.fakes import FakeWorld

BLOB_READ = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
ACCOUNT_READ = "Microsoft.Storage/storageAccounts/read"


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("*", ACCOUNT_READ, True),
        ("*/read", ACCOUNT_READ, True),
        ("*/read", "Microsoft.Storage/storageAccounts/write", False),
        ("Microsoft.Storage/*/read", ACCOUNT_READ, True),
        ("Microsoft.Storage/*/read", "Microsoft.Sql/servers/read", False),
        ("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*", BLOB_READ, True),
        ("Microsoft.Storage/storageAccounts/blobServices/containers/*", BLOB_READ, True),
        ("microsoft.storage/STORAGEACCOUNTS/read", ACCOUNT_READ, True),
        (ACCOUNT_READ, "Microsoft.Storage/storageAccounts/readX", False),
        ("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read", BLOB_READ.upper(), True),
        ("Microsoft.Storage.Extra/*", ACCOUNT_READ, False),  # `.` is literal, not a regex wildcard
    ],
)
def test_action_matches(pattern: str, action: str, expected: bool) -> None:
    assert rbac.action_matches(pattern, action) is expected


def _role(*blocks: Permission) -> RoleDefinition:
    return RoleDefinition(
        id="/providers/Microsoft.Authorization/roleDefinitions/x", role_name="x", permissions=blocks
    )


def test_control_plane_star_never_grants_data_actions() -> None:
    owner = _role(Permission(actions=("*",)))
    assert rbac.allows(owner, ACCOUNT_READ, data=False)
    assert not rbac.allows(owner, BLOB_READ, data=True)


def test_not_data_actions_subtract_within_block_only() -> None:
    narrowed = Permission(data_actions=("Microsoft.Storage/*",), not_data_actions=(BLOB_READ,))
    assert not rbac.allows(_role(narrowed), BLOB_READ, data=True)
    assert rbac.allows(
        _role(narrowed), "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write", data=True
    )
    # a second block granting it wins: notDataActions are not a deny
    assert rbac.allows(_role(narrowed, Permission(data_actions=(BLOB_READ,))), BLOB_READ, data=True)


def test_not_actions_subtract_control_plane() -> None:
    role = _role(Permission(actions=("*/read",), not_actions=("Microsoft.Storage/*",)))
    assert not rbac.allows(role, ACCOUNT_READ, data=False)
    assert rbac.allows(role, "Microsoft.Sql/servers/read", data=False)


@pytest.mark.parametrize(
    "scope",
    [w.STORAGE_ID, w.RG_ID, w.SUB_ID, w.STORAGE_ID.upper(), w.RG_ID.lower() + "/"],
)
async def test_inherited_and_case_insensitive_scopes_grant(scope: str) -> None:
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(scope, w.BLOB_DATA_READER))
    grant = await rbac.evaluate(FakeWorld(world).facts(), w.STORAGE_ID, w.PURVIEW_MSI, BLOB_READ, data=True)
    assert grant.granted and not grant.conditional
    assert grant.via[0]["roleName"] == "Storage Blob Data Reader"
    assert grant.via[0]["principalId"] == w.PURVIEW_MSI


async def test_owner_at_subscription_does_not_grant_blob_read() -> None:
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(w.SUB_ID, w.OWNER))
    grant = await rbac.evaluate(FakeWorld(world).facts(), w.STORAGE_ID, w.PURVIEW_MSI, BLOB_READ, data=True)
    assert not grant.granted
    assert grant.considered == (
        {"roleName": "Owner", "scope": w.SUB_ID, "principalType": "ServicePrincipal"},
    )
    assert "Owner at /subscriptions/" in rbac.held_roles_text(grant)


async def test_transitive_group_membership_grants() -> None:
    world = w.adls_world()
    w.join_group(world, w.PURVIEW_MSI, w.GROUP_OID)
    w.join_group(world, w.GROUP_OID, w.OUTER_GROUP_OID)
    world["roleAssignments"].append(
        w.assignment(w.RG_ID, w.BLOB_DATA_READER, w.OUTER_GROUP_OID, principal_type="Group")
    )
    grant = await rbac.evaluate(FakeWorld(world).facts(), w.STORAGE_ID, w.PURVIEW_MSI, BLOB_READ, data=True)
    assert grant.granted
    assert grant.via[0]["principalId"] == w.OUTER_GROUP_OID and grant.via[0]["principalType"] == "Group"


async def test_custom_role_wildcard_and_not_data_actions_with_second_role() -> None:
    world = w.adls_world()
    world["roleDefinitions"].append(
        w.custom_role(
            "99999999-0000-0000-0000-000000000001",
            "Blob writer no read",
            data_actions=["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"],
            not_data_actions=[BLOB_READ],
        )
    )
    world["roleAssignments"].append(w.assignment(w.STORAGE_ID, "99999999-0000-0000-0000-000000000001"))
    fake = FakeWorld(world)
    grant = await rbac.evaluate(fake.facts(), w.STORAGE_ID, w.PURVIEW_MSI, BLOB_READ, data=True)
    assert not grant.granted
    assert grant.considered[0]["roleName"] == "Blob writer no read"
    world["roleAssignments"].append(w.assignment(w.SUB_ID, w.BLOB_DATA_READER))
    grant = await rbac.evaluate(FakeWorld(world).facts(), w.STORAGE_ID, w.PURVIEW_MSI, BLOB_READ, data=True)
    assert grant.granted and [v["roleName"] for v in grant.via] == ["Storage Blob Data Reader"]


async def test_custom_role_with_wildcard_data_action_grants() -> None:
    world = w.adls_world()
    world["roleDefinitions"].append(
        w.custom_role(
            "99999999-0000-0000-0000-000000000002", "Blob all", data_actions=["Microsoft.Storage/*"]
        )
    )
    world["roleAssignments"].append(w.assignment(w.RG_ID, "99999999-0000-0000-0000-000000000002"))
    grant = await rbac.evaluate(FakeWorld(world).facts(), w.STORAGE_ID, w.PURVIEW_MSI, BLOB_READ, data=True)
    assert grant.granted


@pytest.mark.parametrize("prefix", [True, False])
async def test_builtin_id_with_and_without_subscription_prefix(prefix: bool) -> None:
    world = w.adls_world()
    world["roleAssignments"].append(
        w.assignment(w.STORAGE_ID, w.BLOB_DATA_READER, subscription_prefix=prefix)
    )
    grant = await rbac.evaluate(FakeWorld(world).facts(), w.STORAGE_ID, w.PURVIEW_MSI, BLOB_READ, data=True)
    assert grant.granted


async def test_condition_makes_grant_conditional_unless_an_unconditional_one_exists() -> None:
    cond = "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'raw'"
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(w.STORAGE_ID, w.BLOB_DATA_READER, condition=cond))
    grant = await rbac.evaluate(FakeWorld(world).facts(), w.STORAGE_ID, w.PURVIEW_MSI, BLOB_READ, data=True)
    assert grant.granted and grant.conditional and grant.via[0]["condition"] == cond
    world["roleAssignments"].append(w.assignment(w.RG_ID, w.BLOB_DATA_CONTRIBUTOR))
    grant = await rbac.evaluate(FakeWorld(world).facts(), w.STORAGE_ID, w.PURVIEW_MSI, BLOB_READ, data=True)
    assert grant.granted and not grant.conditional and len(grant.via) == 2


async def test_each_definition_fetched_once() -> None:
    world = w.adls_world()
    world["roleAssignments"] += [w.assignment(w.SUB_ID, w.READER), w.assignment(w.RG_ID, w.READER)]
    fake = FakeWorld(world)
    grant = await rbac.evaluate(fake.facts(), w.STORAGE_ID, w.PURVIEW_MSI, ACCOUNT_READ, data=False)
    assert grant.granted and len(grant.via) == 2
    assert fake.calls[f"arm.role_definition:{w.READER}"] == 1


async def test_gateway_error_propagates() -> None:
    fake = FakeWorld(w.adls_world())
    fake.fail["arm.role_assignments"] = GatewayError(
        "list role assignments", status=403, permission="Microsoft.Authorization/roleAssignments/read"
    )
    with pytest.raises(GatewayError):
        await rbac.evaluate(fake.facts(), w.STORAGE_ID, w.PURVIEW_MSI, BLOB_READ, data=True)


async def test_missing_definition_raises_only_when_nothing_else_grants() -> None:
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(w.STORAGE_ID, "99999999-dead-0000-0000-000000000000"))
    with pytest.raises(NotFoundError):
        await rbac.evaluate(FakeWorld(world).facts(), w.STORAGE_ID, w.PURVIEW_MSI, BLOB_READ, data=True)
    world["roleAssignments"].append(w.assignment(w.STORAGE_ID, w.BLOB_DATA_READER))
    grant = await rbac.evaluate(FakeWorld(world).facts(), w.STORAGE_ID, w.PURVIEW_MSI, BLOB_READ, data=True)
    assert grant.granted


@pytest.mark.parametrize(
    ("assigned", "target", "applies"),
    [
        ("/subscriptions/S", "/subscriptions/s/resourceGroups/rg", True),
        ("/subscriptions/s/resourceGroups/rg", "/subscriptions/s/resourceGroups/rg2", False),  # not a prefix
        ("/subscriptions/s/resourceGroups/rg-data", "/subscriptions/s/resourceGroups/rg", False),
        ("/subscriptions/s/resourceGroups/rg/", "/subscriptions/s/resourceGroups/RG/providers/x/y/z", True),
        ("/", "/subscriptions/s", True),
        ("/providers/Microsoft.Management/managementGroups/root", "/subscriptions/s", True),
        ("/subscriptions/s/resourceGroups/rg/providers/x/y/z", "/subscriptions/s/resourceGroups/rg", False),
    ],
)
def test_scope_applies(assigned: str, target: str, applies: bool) -> None:
    assert rbac.scope_applies(assigned, target) is applies
