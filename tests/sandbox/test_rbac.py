"""Role assignments and definitions with ARM's filter semantics, through the real authorization SDK."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.identity.aio import EnvironmentCredential
from azure.mgmt.authorization.aio import AuthorizationManagementClient

from sandbox import Sandbox
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
)

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


async def test_wire_shape_is_complete(call: Caller) -> None:
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
    assert props["createdOn"].startswith("2026-11-28T08:00:00")  # the world's clock


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
