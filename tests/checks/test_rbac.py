"""RBAC evaluation: wildcards, notActions, inheritance, groups, conditions, id shapes, failures, deny
assignments, grants below the scope and bundled definitions."""

from __future__ import annotations

from typing import Any

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


# --- deny assignments ----------------------------------------------------------------------------------

CONTAINER_ID = f"{w.STORAGE_ID}/blobServices/default/containers/raw"


def _granted_world() -> dict[str, Any]:
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(w.STORAGE_ID, w.BLOB_DATA_READER))
    return world


async def _blob(world: dict[str, Any], scope: str = w.STORAGE_ID, **kw: object) -> rbac.Grant:
    facts = FakeWorld(world).facts()
    for name, value in kw.items():
        setattr(facts, name, value)
    return await rbac.evaluate(facts, scope, w.PURVIEW_MSI, BLOB_READ, data=True)


async def test_deny_assignment_for_everyone_overrides_the_role_grant() -> None:
    world = _granted_world()
    deny = w.deny_assignment(w.RG_ID, data_actions=["*"])
    world["denyAssignments"] = [deny]
    grant = await _blob(world)
    assert not grant.granted and grant.denied and grant.deny_checked
    assert grant.via[0]["roleName"] == "Storage Blob Data Reader"  # the role grant stays visible
    (denied,) = grant.denied_by
    assert (denied["name"], denied["scope"], denied["id"]) == (
        "System deny assignment created by managed application",
        w.RG_ID,
        deny["id"],
    )
    assert denied["description"] == deny["properties"]["description"] and denied["isSystemProtected"]
    assert "createdOn" not in denied  # the world gave none
    ev = grant.evidence()
    assert ev["deniedBy"] == [denied] and ev["denyChecked"] is True and "denyUnread" not in ev
    deny["properties"]["createdOn"] = "2026-10-01T09:00:00.1234567+00:00"
    (dated,) = (await _blob(world)).denied_by
    assert dated["createdOn"] == "2026-10-01T09:00:00.123456Z"
    assert "denied by deny assignment" in rbac.held_roles_text(grant)
    assert rbac.denial_text(grant) and w.RG_ID in str(rbac.denial_text(grant))


@pytest.mark.parametrize(
    ("deny_kw", "denied"),
    [
        ({"data_actions": ["*"]}, True),
        ({"data_actions": ["Microsoft.Storage/*/read"]}, True),
        ({"data_actions": ["*"], "not_data_actions": [BLOB_READ]}, False),  # notDataActions carve it out
        ({"actions": ["*"], "not_actions": ["*/read"]}, False),  # control plane only: no data action
        ({"data_actions": ["*"], "exclude": [(w.PURVIEW_MSI, "ServicePrincipal")]}, False),
        ({"data_actions": ["*"], "principals": [(w.PURVIEW_MSI, "ServicePrincipal")]}, True),
        ({"data_actions": ["*"], "principals": [(w.USER_OID, "User")]}, False),  # someone else
    ],
)
async def test_deny_assignment_permissions_and_principals(deny_kw: dict[str, Any], denied: bool) -> None:
    world = _granted_world()
    world["denyAssignments"] = [w.deny_assignment(w.RG_ID, **deny_kw)]
    grant = await _blob(world)
    assert grant.granted is not denied and bool(grant.denied_by) is denied and grant.deny_checked


async def test_control_plane_deny_keeps_star_read_but_denies_writes() -> None:
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(w.RG_ID, w.OWNER))
    world["denyAssignments"] = [w.deny_assignment(w.RG_ID, actions=["*"], not_actions=["*/read"])]
    facts = FakeWorld(world).facts()
    read = await rbac.evaluate(facts, w.STORAGE_ID, w.PURVIEW_MSI, ACCOUNT_READ, data=False)
    write = await rbac.evaluate(
        facts, w.STORAGE_ID, w.PURVIEW_MSI, "Microsoft.Storage/storageAccounts/write", data=False
    )
    assert read.granted and not read.denied_by
    assert not write.granted and write.denied


async def test_do_not_apply_to_child_scopes_limits_the_deny_to_its_own_scope() -> None:
    world = _granted_world()
    world["denyAssignments"] = [w.deny_assignment(w.RG_ID, data_actions=["*"], child_scopes=False)]
    assert (await _blob(world)).granted
    world["denyAssignments"] = [w.deny_assignment(w.STORAGE_ID, data_actions=["*"], child_scopes=False)]
    assert not (await _blob(world)).granted


async def test_deny_on_another_branch_does_not_apply() -> None:
    world = _granted_world()
    other = f"{w.SUB_ID}/resourceGroups/rg-other"
    world["denyAssignments"] = [
        w.deny_assignment(other, data_actions=["*"]),
        w.deny_assignment(CONTAINER_ID, data_actions=["*"]),  # below the scope: not the whole account
    ]
    grant = await _blob(world)
    assert grant.granted and not grant.denied_by


async def test_deny_naming_a_group_needs_group_membership() -> None:
    world = _granted_world()
    world["denyAssignments"] = [
        w.deny_assignment(w.RG_ID, data_actions=["*"], principals=[(w.GROUP_OID, "Group")])
    ]

    async def member(object_id: str) -> frozenset[str]:
        assert object_id == w.PURVIEW_MSI
        return frozenset({w.GROUP_OID.upper()})

    async def not_member(object_id: str) -> frozenset[str]:
        return frozenset()

    async def refused(object_id: str) -> frozenset[str]:
        raise GatewayError("list transitive groups", status=403, permission="GroupMember.Read.All")

    denied = await _blob(world, transitive_group_ids=member)
    assert not denied.granted and denied.deny_checked
    assert (await _blob(world, transitive_group_ids=not_member)).granted
    unread = await _blob(world, transitive_group_ids=refused)
    assert unread.granted and not unread.deny_checked and not unread.denied_by  # never a wrong fail
    assert unread.evidence()["denyUnread"]["permission"] == "GroupMember.Read.All"


async def test_excluded_group_spares_its_members() -> None:
    world = _granted_world()
    world["denyAssignments"] = [
        w.deny_assignment(w.RG_ID, data_actions=["*"], exclude=[(w.GROUP_OID, "Group")])
    ]

    async def member(object_id: str) -> frozenset[str]:
        return frozenset({w.GROUP_OID})

    async def not_member(object_id: str) -> frozenset[str]:
        return frozenset({w.OUTER_GROUP_OID})

    assert (await _blob(world, transitive_group_ids=member)).granted
    assert not (await _blob(world, transitive_group_ids=not_member)).granted


async def test_unreadable_deny_assignments_leave_the_grant_standing() -> None:
    fake = FakeWorld(_granted_world())
    fake.fail["arm.deny_assignments"] = GatewayError(
        "list deny assignments", status=403, permission="Microsoft.Authorization/denyAssignments/read"
    )
    grant = await rbac.evaluate(fake.facts(), w.STORAGE_ID, w.PURVIEW_MSI, BLOB_READ, data=True)
    assert grant.granted and not grant.deny_checked
    ev = grant.evidence()
    assert ev["denyChecked"] is False and ev["denyUnread"]["status"] == 403


async def test_conditional_deny_makes_the_grant_conditional_not_denied() -> None:
    world = _granted_world()
    cond = "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'x'"
    world["denyAssignments"] = [w.deny_assignment(w.RG_ID, data_actions=["*"], condition=cond)]
    grant = await _blob(world)
    assert grant.granted and grant.conditional and not grant.denied
    assert grant.denied_by[0]["condition"] == cond


async def test_a_deny_decides_even_when_a_role_definition_is_unreadable() -> None:
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(w.STORAGE_ID, "99999999-dead-0000-0000-000000000000"))
    world["denyAssignments"] = [w.deny_assignment(w.RG_ID, data_actions=["*"])]
    grant = await _blob(world)
    assert not grant.granted and grant.denied


async def test_deny_assignments_and_role_assignments_read_once_per_scope() -> None:
    world = _granted_world()
    world["denyAssignments"] = [w.deny_assignment(w.RG_ID, actions=["*"], not_actions=["*/read"])]
    fake = FakeWorld(world)
    facts = fake.facts()
    await rbac.evaluate(facts, w.STORAGE_ID, w.PURVIEW_MSI, BLOB_READ, data=True)
    await rbac.evaluate(facts, w.STORAGE_ID, w.PURVIEW_MSI, ACCOUNT_READ, data=False)
    assert fake.calls[f"arm.deny_assignments:{w.STORAGE_ID.lower()}"] == 1
    assert fake.calls[f"arm.role_assignments:{w.STORAGE_ID.lower()}:{w.PURVIEW_MSI}"] == 1
    assert fake.calls[f"arm.role_definition:{w.BLOB_DATA_READER}"] == 1


# --- grants below the scope --------------------------------------------------------------------------


async def test_container_grant_is_partial_not_a_grant_on_the_account() -> None:
    world = w.adls_world()
    world["roleAssignments"] += [
        w.assignment(CONTAINER_ID, w.BLOB_DATA_READER),
        w.assignment(CONTAINER_ID.replace("/raw", "/logs"), w.READER),  # grants no blob read
        w.assignment(w.SUB_ID, w.READER),
    ]
    grant = await _blob(world)
    assert not grant.granted and not grant.via
    assert [(p["roleName"], p["scope"]) for p in grant.partial] == [
        ("Storage Blob Data Reader", CONTAINER_ID)
    ]
    assert grant.evidence()["partial"][0]["principalType"] == "ServicePrincipal"
    assert [c["scope"] for c in grant.considered] == [w.SUB_ID]  # at or above only
    assert rbac.partial_text(grant) == f"Storage Blob Data Reader at {CONTAINER_ID}"
    # on the container itself the same assignment is a full grant
    on_container = await _blob(world, scope=CONTAINER_ID)
    assert on_container.granted and not on_container.partial


async def test_single_secret_grant_is_partial_on_the_vault() -> None:
    vault = f"{w.RG_ID}/providers/Microsoft.KeyVault/vaults/kv-data"
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(f"{vault}/secrets/sql-password", w.KV_SECRETS_USER))
    facts = FakeWorld(world).facts()
    action = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
    grant = await rbac.evaluate(facts, vault, w.PURVIEW_MSI, action, data=True)
    assert not grant.granted
    assert grant.partial[0]["scope"].endswith("/secrets/sql-password")


async def test_an_inherited_deny_denies_the_child_grants_too() -> None:
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(CONTAINER_ID, w.BLOB_DATA_READER))
    world["denyAssignments"] = [w.deny_assignment(w.RG_ID, data_actions=["*"])]
    grant = await _blob(world)
    assert not grant.partial and grant.denied


async def test_bundled_definitions_are_named_in_the_evidence() -> None:
    world = w.adls_world()
    world["roleAssignments"].append(w.assignment(w.SUB_ID, w.READER))
    fake = FakeWorld(world)
    reader = fake.role_defs[w.READER]
    fake.role_defs[w.READER] = RoleDefinition(
        id=reader.id,
        role_name=reader.role_name,
        permissions=reader.permissions,
        role_type=reader.role_type,
        source="bundled",
    )
    grant = await rbac.evaluate(fake.facts(), w.STORAGE_ID, w.PURVIEW_MSI, ACCOUNT_READ, data=False)
    assert grant.via[0]["definitionSource"] == "bundled"
    assert grant.considered[0]["definitionSource"] == "bundled"


async def test_group_membership_is_read_from_graph_only_when_a_deny_names_a_group() -> None:
    world = _granted_world()
    w.join_group(world, w.PURVIEW_MSI, w.GROUP_OID)
    w.join_group(world, w.GROUP_OID, w.OUTER_GROUP_OID)
    world["denyAssignments"] = [w.deny_assignment(w.RG_ID, data_actions=["*"])]  # Everyone: no groups needed
    fake = FakeWorld(world)
    assert not (await rbac.evaluate(fake.facts(), w.STORAGE_ID, w.PURVIEW_MSI, BLOB_READ, data=True)).granted
    assert not [c for c in fake.calls if c.startswith("graph.")]
    world["denyAssignments"] = [
        w.deny_assignment(w.RG_ID, data_actions=["*"], principals=[(w.OUTER_GROUP_OID, "Group")])
    ]
    fake = FakeWorld(world)
    grant = await rbac.evaluate(fake.facts(), w.STORAGE_ID, w.PURVIEW_MSI, BLOB_READ, data=True)
    assert not grant.granted and grant.deny_checked  # nested: MSI → group → outer group
    assert fake.calls[f"graph.groups:{w.PURVIEW_MSI}"] == 1
