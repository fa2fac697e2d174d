"""Role assignments and definitions with ARM's filter semantics, through the real authorization SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.identity.aio import EnvironmentCredential
from azure.mgmt.authorization.aio import AuthorizationManagementClient

from sandbox import Sandbox, load_world
from sandbox.world import WorldError
from tests.sandbox.conftest import (
    ALICE,
    ARCHIVE,
    ARM,
    BOB,
    GROUP_OUTER,
    PV_MSI,
    RG_DATA,
    SQL_DB,
    SQL_SERVER,
    STORAGE,
    SUB,
    Caller,
    client_session,
    get_token,
)

EVERYONE = "00000000-0000-0000-0000-000000000000"
DENY_RG, DENY_STORAGE, DENY_CONTAINER, DENY_OTHER_RG = (
    f"dddddddd-0000-0000-0000-00000000000{i}" for i in range(1, 5)
)
BLOB_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"


def _deny(
    name: str, scope: str, display: str, principals: list[dict[str, str]], **props: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            "denyAssignmentName": display,
            "description": f"{display} (test)",
            "scope": scope,
            "permissions": [{"dataActions": ["*"]}],
            "principals": principals,
            **props,
        },
    }


DENY_ASSIGNMENTS = [
    _deny(
        DENY_RG,
        RG_DATA,
        "managed app lock",
        [{"id": EVERYONE, "type": "SystemDefined"}],
        excludePrincipals=[{"id": BOB, "type": "User"}],
    ),
    _deny(DENY_STORAGE, STORAGE, "stack deny", [{"id": PV_MSI, "type": "ServicePrincipal"}]),
    _deny(
        DENY_CONTAINER,
        f"{STORAGE}/blobServices/default/containers/raw",
        "container",
        [{"id": ALICE, "type": "User"}],
    ),
    _deny(
        DENY_OTHER_RG,
        f"/subscriptions/{SUB}/resourceGroups/rg-other",
        "elsewhere",
        [{"id": EVERYONE, "type": "SystemDefined"}],
    ),
]
# a world may override a built-in role definition (the bundled copy is only the default)
OVERRIDDEN_BUILTIN = {
    "name": BLOB_CONTRIBUTOR,
    "id": f"/providers/Microsoft.Authorization/roleDefinitions/{BLOB_CONTRIBUTOR}",
    "properties": {
        "roleName": "Storage Blob Data Contributor",
        "type": "BuiltInRole",
        "permissions": [
            {
                "actions": [],
                "dataActions": ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"],
            }
        ],
    },
}


@pytest.fixture
async def sb(world_data: dict[str, Any]) -> AsyncIterator[Sandbox]:
    """The minimal world plus deny assignments and an overridden built-in (role assignments unchanged)."""
    world = {
        **world_data,
        "denyAssignments": DENY_ASSIGNMENTS,
        "roleDefinitions": [*world_data["roleDefinitions"], OVERRIDDEN_BUILTIN],
    }
    async with Sandbox(load_world(world)) as sandbox:
        yield sandbox


ASSIGNMENTS = "/providers/Microsoft.Authorization/roleAssignments"
V = {"api-version": "2022-04-01"}
SUBSCRIPTION_READER, STORAGE_DIRECT, GROUP_ON_RG, ON_DATABASE, ROOT_OWNER, ON_ARCHIVE = (
    f"0000000a-0000-0000-0000-00000000000{i}" for i in range(1, 7)
)
CONTAINER = f"{STORAGE}/blobServices/default/containers/raw"


async def names(call: Caller, scope: str, filter_text: str | None = None) -> set[str]:
    params = dict(V) if filter_text is None else {**V, "$filter": filter_text}
    status, body, _ = await call("GET", f"{scope}{ASSIGNMENTS}", scope=ARM, params=params)
    assert status == 200, body
    return {a["name"] for a in body["value"]}


@pytest.mark.parametrize(
    ("scope", "filter_text", "expected"),
    [
        # no filter: at, above and below the scope
        (STORAGE, None, {SUBSCRIPTION_READER, STORAGE_DIRECT, GROUP_ON_RG, ROOT_OWNER}),
        (
            RG_DATA,
            None,
            {SUBSCRIPTION_READER, STORAGE_DIRECT, GROUP_ON_RG, ON_DATABASE, ROOT_OWNER, ON_ARCHIVE},
        ),
        # atScope(): at or above only
        (RG_DATA, "atScope()", {SUBSCRIPTION_READER, GROUP_ON_RG, ROOT_OWNER}),
        ("/", "atScope()", {ROOT_OWNER}),
        # ancestors include parent resources of nested types
        (CONTAINER, "atScope()", {SUBSCRIPTION_READER, STORAGE_DIRECT, GROUP_ON_RG, ROOT_OWNER}),
        (SQL_DB, f"atScope() and assignedTo('{PV_MSI}')", {SUBSCRIPTION_READER, ON_DATABASE}),
        (SQL_SERVER, f"atScope() and assignedTo('{PV_MSI}')", {SUBSCRIPTION_READER}),
        # assignedTo(): the principal and its groups, transitively (Alice → data-readers → all-staff)
        (STORAGE, f"atScope() and assignedTo('{ALICE}')", {GROUP_ON_RG}),
        (STORAGE, f"assignedTo('{PV_MSI}') and atScope()", {SUBSCRIPTION_READER, STORAGE_DIRECT}),
        (
            f"/subscriptions/{SUB}",
            f"assignedTo('{PV_MSI}')",
            {SUBSCRIPTION_READER, STORAGE_DIRECT, ON_DATABASE, ON_ARCHIVE},
        ),
        # principalId eq: direct only, at/above/below
        (STORAGE, f"principalId eq '{ALICE}'", set()),
        (f"/subscriptions/{SUB}", f"principalId eq '{GROUP_OUTER}'", {GROUP_ON_RG}),
        (STORAGE, f"principalId eq '{BOB}'", {ROOT_OWNER}),
        (
            STORAGE.upper(),
            f"atScope() and principalId eq '{PV_MSI.upper()}'",
            {SUBSCRIPTION_READER, STORAGE_DIRECT},
        ),
    ],
)
async def test_filter_semantics(
    call: Caller, scope: str, filter_text: str | None, expected: set[str]
) -> None:
    assert await names(call, scope.rstrip("/"), filter_text) == expected


async def test_unknown_filter_is_400(call: Caller) -> None:
    status, body, _ = await call(
        "GET", f"{STORAGE}{ASSIGNMENTS}", scope=ARM, params={**V, "$filter": "roleName eq 'Owner'"}
    )
    assert status == 400
    assert body["error"]["code"] == "UnsupportedQuery"


async def test_wire_shape_is_complete(call: Caller, sb: Sandbox) -> None:
    _, body, _ = await call("GET", f"{STORAGE}{ASSIGNMENTS}", scope=ARM, params={**V, "$filter": "atScope()"})
    item = next(a for a in body["value"] if a["name"] == SUBSCRIPTION_READER)
    assert item["id"] == f"/subscriptions/{SUB}{ASSIGNMENTS}/{SUBSCRIPTION_READER}"
    assert item["type"] == "Microsoft.Authorization/roleAssignments"
    props = item["properties"]
    assert props.keys() >= {
        "roleDefinitionId", "principalId", "principalType", "scope", "condition", "conditionVersion",
        "createdOn", "updatedOn", "createdBy", "updatedBy", "description",
        "delegatedManagedIdentityResourceId",
    }  # fmt: skip
    # a bare GUID in the world is served as the subscription-qualified id ARM returns
    assert props["roleDefinitionId"] == (
        f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"
    )
    assert props["principalType"] == "ServicePrincipal"  # from the world's principals
    assert sb.world.now is not None  # the world's clock (as loaded: a world may be rebased to now)
    assert props["createdOn"].startswith(sb.world.now.strftime("%Y-%m-%dT%H:%M:%S"))


async def test_sdk_list_for_scope(sb: Sandbox, credential: EnvironmentCredential) -> None:
    async with AuthorizationManagementClient(
        credential, SUB, base_url=sb.url, connection_verify=sb.ca_file
    ) as c:
        found = [
            ra
            async for ra in c.role_assignments.list_for_scope(
                ARCHIVE, filter=f"atScope() and assignedTo('{PV_MSI}')"
            )
        ]
    by_name = {ra.name: ra for ra in found}
    assert set(by_name) == {SUBSCRIPTION_READER, ON_ARCHIVE}
    archive = by_name[ON_ARCHIVE]
    assert archive.scope == ARCHIVE
    assert archive.principal_id == PV_MSI
    assert archive.role_definition_id.endswith("2a2b9908-6ea1-4ae2-8e65-a410df84e7d1")
    assert archive.condition and archive.condition_version == "2.0"
    assert all(r.authorized for r in sb.requests if r.host_area == "arm")


async def test_sdk_follows_role_assignment_pages(paged_sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in paged_sb.env().items():
        monkeypatch.setenv(key, value)
    cred = EnvironmentCredential(connection_verify=paged_sb.ca_file)
    async with (
        cred,
        AuthorizationManagementClient(
            cred, SUB, base_url=paged_sb.url, connection_verify=paged_sb.ca_file
        ) as c,
    ):
        found = [ra.name async for ra in c.role_assignments.list_for_scope(RG_DATA)]
    assert len(found) == 6 == len(set(found))
    pages = [r for r in paged_sb.requests if r.path.endswith("/roleAssignments")]
    assert len(pages) == 6
    assert all(r.query.get("api-version") for r in pages)


async def test_sdk_role_definitions(sb: Sandbox, credential: EnvironmentCredential) -> None:
    async with AuthorizationManagementClient(
        credential, SUB, base_url=sb.url, connection_verify=sb.ca_file
    ) as c:
        reader = await c.role_definitions.get_by_id(
            f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
        )
        custom = await c.role_definitions.get_by_id(
            f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/99999999-0000-0000-0000-000000000001"
        )
        with pytest.raises(ResourceNotFoundError) as missing:
            await c.role_definitions.get_by_id(
                "/providers/Microsoft.Authorization/roleDefinitions/00000000-dead-beef-0000-000000000000"
            )
    assert reader.role_name == "Storage Blob Data Reader"
    assert reader.role_type == "BuiltInRole"
    assert reader.assignable_scopes == ["/"]
    assert reader.id.startswith(f"/subscriptions/{SUB}/")
    assert (
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
        in reader.permissions[0].data_actions
    )
    assert custom.role_name == "Blob Lister (custom)" and custom.role_type == "CustomRole"
    assert missing.value.error is not None and missing.value.error.code == "RoleDefinitionDoesNotExist"


async def test_role_definition_list_filter(call: Caller) -> None:
    path = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions"
    _, body, _ = await call("GET", path, scope=ARM, params={**V, "$filter": "roleName eq 'Reader'"})
    assert [d["name"] for d in body["value"]] == ["acdd72a7-3385-48ef-bd42-f606fba81ae7"]
    _, body, _ = await call("GET", path, scope=ARM, params={**V, "$filter": "type eq 'CustomRole'"})
    assert [d["properties"]["roleName"] for d in body["value"]] == ["Blob Lister (custom)"]


# --- deny assignments ----------------------------------------------------------------------------------

DENIES = "/providers/Microsoft.Authorization/denyAssignments"


async def deny_names(call: Caller, scope: str, filter_text: str | None = None) -> set[str]:
    params = dict(V) if filter_text is None else {**V, "$filter": filter_text}
    status, body, _ = await call("GET", f"{scope}{DENIES}", scope=ARM, params=params)
    assert status == 200, body
    return {d["name"] for d in body["value"]}


@pytest.mark.parametrize(
    ("scope", "filter_text", "expected"),
    [
        (STORAGE, "atScope()", {DENY_RG, DENY_STORAGE}),
        (RG_DATA, "atScope()", {DENY_RG}),
        (STORAGE, None, {DENY_RG, DENY_STORAGE, DENY_CONTAINER}),  # no filter: below too
        (f"/subscriptions/{SUB}", None, {DENY_RG, DENY_STORAGE, DENY_CONTAINER, DENY_OTHER_RG}),
        (f"/subscriptions/{SUB}", f"principalId eq '{PV_MSI}'", {DENY_STORAGE}),  # direct only
        (f"/subscriptions/{SUB}", f"gdprExportPrincipalId eq '{BOB}'", {DENY_RG}),  # excluded counts
        (STORAGE, "denyAssignmentName eq 'stack deny'", {DENY_STORAGE}),
        (STORAGE.upper(), f"atScope() and principalId eq '{PV_MSI.upper()}'", {DENY_STORAGE}),
    ],
)
async def test_deny_assignment_filters(
    call: Caller, scope: str, filter_text: str | None, expected: set[str]
) -> None:
    assert await deny_names(call, scope, filter_text) == expected


async def test_deny_assignment_gdpr_view_and_errors(call: Caller) -> None:
    params = {**V, "$filter": f"gdprExportPrincipalId eq '{BOB}'"}
    _, body, _ = await call("GET", f"{RG_DATA}{DENIES}", scope=ARM, params=params)
    assert body["value"][0]["properties"] == {
        "denyAssignmentName": "managed app lock",
        "description": "managed app lock (test)",
    }
    status, body, _ = await call(
        "GET", f"{RG_DATA}{DENIES}", scope=ARM, params={**V, "$filter": "scope eq 'x'"}
    )
    assert status == 400 and body["error"]["code"] == "UnsupportedQuery"
    status, body, _ = await call("GET", f"{RG_DATA}{DENIES}/{DENY_STORAGE}", scope=ARM, params=V)
    assert status == 404 and body["error"]["code"] == "DenyAssignmentNotFound"
    status, body, _ = await call("GET", f"{STORAGE}{DENIES}/{DENY_STORAGE}", scope=ARM, params=V)
    assert status == 200 and body["id"] == f"{STORAGE}{DENIES}/{DENY_STORAGE}"
    props = body["properties"]
    assert props["permissions"] == [
        {"actions": [], "notActions": [], "dataActions": ["*"], "notDataActions": []}
    ]
    assert props["doNotApplyToChildScopes"] is False and props["isSystemProtected"] is True


async def test_sdk_deny_assignments(sb: Sandbox, credential: EnvironmentCredential) -> None:
    async with AuthorizationManagementClient(
        credential, SUB, base_url=sb.url, connection_verify=sb.ca_file
    ) as c:
        found = [d async for d in c.deny_assignments.list_for_scope(STORAGE, filter="atScope()")]
    by_name = {d.name: d for d in found}
    assert set(by_name) == {DENY_RG, DENY_STORAGE}
    lock = by_name[DENY_RG]
    assert lock.deny_assignment_name == "managed app lock" and lock.scope == RG_DATA
    assert [(p.id, p.type) for p in lock.principals] == [(EVERYONE, "SystemDefined")]
    assert [p.id for p in lock.exclude_principals] == [BOB]
    assert lock.permissions[0].data_actions == ["*"] and lock.is_system_protected is True


def test_world_rejects_a_deny_assignment_without_principals(world_data: dict[str, Any]) -> None:
    bad = _deny("x", RG_DATA, "no one", [])
    with pytest.raises(
        WorldError, match=r"denyAssignments\[0\]\.properties: missing non-empty list 'principals'"
    ):
        load_world({**world_data, "denyAssignments": [bad]})


# --- built-in role definitions by GET ------------------------------------------------------------------

READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


@pytest.mark.parametrize("prefix", ["", f"/subscriptions/{SUB}", RG_DATA])
async def test_builtin_role_definition_by_id_and_scoped(call: Caller, prefix: str) -> None:
    status, body, _ = await call(
        "GET", f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{READER}", scope=ARM, params=V
    )
    assert status == 200, body
    assert body["id"] == f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{READER}"
    assert body["properties"]["roleName"] == "Reader" and body["properties"]["type"] == "BuiltInRole"
    assert body["properties"]["permissions"][0]["actions"] == ["*/read"]


async def test_a_world_overrides_a_builtin_role_definition(call: Caller) -> None:
    path = f"/providers/Microsoft.Authorization/roleDefinitions/{BLOB_CONTRIBUTOR}"
    _, body, _ = await call("GET", path, scope=ARM, params=V)
    assert body["properties"]["permissions"][0]["dataActions"] == [
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"
    ]
    listing = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions"
    params = {**V, "$filter": "roleName eq 'Storage Blob Data Contributor'"}
    _, body, _ = await call("GET", listing, scope=ARM, params=params)
    assert len(body["value"]) == 1 and body["value"][0]["properties"]["permissions"][0]["actions"] == []


# --- what the product asks: assignedTo() alone reaches child scopes ---------------------------------------


async def test_assigned_to_alone_lists_child_scope_assignments(world_data: dict[str, Any]) -> None:
    container = f"{STORAGE}/blobServices/default/containers/raw"
    on_container = {
        "name": "0000000a-0000-0000-0000-0000000000c1",
        "properties": {"scope": container, "roleDefinitionId": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
                       "principalId": GROUP_OUTER},
    }  # fmt: skip
    world = {**world_data, "roleAssignments": [*world_data["roleAssignments"], on_container]}
    async with Sandbox(load_world(world)) as sandbox:
        async with client_session(sandbox) as http:
            token = await get_token(sandbox, http, ARM)
            headers = {"Authorization": f"Bearer {token}"}

            async def listed(flt: str) -> set[str]:
                url = f"{sandbox.url}{STORAGE}{ASSIGNMENTS}"
                async with http.get(url, headers=headers, params={**V, "$filter": flt}) as resp:
                    return {a["properties"]["scope"] for a in (await resp.json())["value"]}

            # Alice reaches the container grant through data-readers → all-staff
            assert container in await listed(f"assignedTo('{ALICE}')")
            assert container not in await listed(f"atScope() and assignedTo('{ALICE}')")


# --- the product's own RBAC reads against the sandbox ----------------------------------------------------


async def test_product_reads_deny_assignments_and_falls_back_to_bundled_builtins(
    sb: Sandbox, credential: EnvironmentCredential
) -> None:
    from checks import rbac
    from checks.facts import Facts
    from checks.gateways.endpoints import AzureEndpoints
    from checks.gateways.factory import AzureClients

    blob_read = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
    endpoints = AzureEndpoints(
        arm_url=sb.url,
        arm_scope=ARM,
        purview_url_template=sb.url + "/purview/{account}",
        purview_scope="https://purview.azure.net/.default",
        graph_url=sb.url + "/graph",
        graph_scope="https://graph.microsoft.com/.default",
        keyvault_verify_challenge=False,
    )
    async with (
        client_session(sb) as session,
        await AzureClients.open(endpoints, credential, session) as clients,
    ):
        facts = Facts(clients.gateways("contoso-pv"), "contoso-pv")
        # Storage Blob Data Reader on the account, but the "stack deny" names the MSI itself
        grant = await rbac.evaluate(facts, STORAGE, PV_MSI, blob_read, data=True)
        assert not grant.granted and grant.deny_checked
        # both: the managed-app lock denies Everyone (only Bob excluded), the stack deny names the MSI
        assert {d["name"] for d in grant.denied_by} == {"managed app lock", "stack deny"}
        assert grant.via and grant.via[0]["definitionSource"] == "arm"
        # Bob is excluded from the managed-app lock and not named by the stack deny
        bob = await rbac.evaluate(facts, STORAGE, BOB, blob_read, data=True)
        assert not bob.denied_by and bob.deny_checked
        again = await rbac.evaluate(
            Facts(clients.gateways("contoso-pv"), "contoso-pv"), STORAGE, PV_MSI, blob_read, data=True
        )
        assert again == grant
        fetched = [r.path for r in sb.requests if "/roleDefinitions/" in r.path]
        assert fetched and len(fetched) == len(set(fetched))  # built-ins: once per gateway and hour
        # built-in definitions refused: the bundled copy answers, and says so (a fresh gateway: no TTL hit)
        sb.add_fault({"path": "/roleDefinitions/", "status": 403, "code": "AuthorizationFailed"})
    async with (
        client_session(sb) as session,
        await AzureClients.open(endpoints, credential, session) as clients,
    ):
        facts = Facts(clients.gateways("contoso-pv"), "contoso-pv")
        grant = await rbac.evaluate(
            facts, ARCHIVE, PV_MSI, "Microsoft.Storage/storageAccounts/read", data=False
        )
        assert grant.granted and {v["definitionSource"] for v in grant.via} == {"bundled"}
        assert grant.considered[0]["definitionSource"] == "bundled"
