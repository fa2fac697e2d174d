"""RBAC reads through the real SDK on a fake ARM: the assignment filter, deny assignments, and built-in
role definitions read from ARM with a per-process TTL and the bundled table as the fallback."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from azure.mgmt.authorization.aio import AuthorizationManagementClient

from checks.errors import GatewayError
from checks.gateways.arm import BUILTIN_TTL_SECONDS, ArmGateway
from checks.gateways.pipeline import arm_pipeline_client, sdk_options
from tests.gateways.conftest import FAST_RETRY, FakeAzure, FakeCredential

ARM_SCOPE = "https://management.azure.com/.default"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
READER_ID = f"/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{READER}"
BLOB_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
ASSIGNMENTS = "/subscriptions/s1/providers/Microsoft.Authorization/roleAssignments"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def arm(
    fake: FakeAzure, credential: FakeCredential, session: aiohttp.ClientSession, clock: Clock
) -> AsyncIterator[ArmGateway]:
    gateway = ArmGateway(
        arm_pipeline_client(fake.url, credential, ARM_SCOPE, session, FAST_RETRY),
        AuthorizationManagementClient(
            credential,
            "00000000-0000-0000-0000-000000000000",
            base_url=fake.url,
            credential_scopes=[ARM_SCOPE],
            **sdk_options(session, FAST_RETRY),
        ),
        call_timeout=5.0,
        clock=clock,
    )
    yield gateway
    await gateway.close()


def role_doc(guid: str, name: str, data_actions: list[str], role_type: str = "BuiltInRole") -> dict[str, Any]:
    return {
        "id": f"/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{guid}",
        "name": guid,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": name,
            "type": role_type,
            "assignableScopes": ["/"],
            "permissions": [{"actions": ["*/read"], "notActions": [], "dataActions": data_actions}],
        },
    }


ASSIGNMENT = {
    "value": [
        {
            "id": f"{ASSIGNMENTS}/a1",
            "name": "a1",
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                "roleDefinitionId": f"/providers/Microsoft.Authorization/roleDefinitions/{READER}",
                "principalId": "oid-1",
                "principalType": "ServicePrincipal",
                "scope": "/subscriptions/s1",
            },
        }
    ]
}


# --- role assignments: one listing at, above and below -------------------------------------------------


async def test_role_assignments_at_the_root_keep_at_scope(fake: FakeAzure, arm: ArmGateway) -> None:
    fake.json("GET", "/providers/Microsoft.Authorization/roleAssignments", ASSIGNMENT)
    await arm.role_assignments("/", "oid-1")
    (root,) = fake.calls("/providers/Microsoft.Authorization/roleAssignments")
    assert root.query["$filter"] == "atScope() and assignedTo('oid-1')"


async def test_role_assignments_fall_back_to_at_scope_after_a_400(fake: FakeAzure, arm: ArmGateway) -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        if request.query["$filter"].startswith("atScope()"):
            return web.json_response(ASSIGNMENT)
        error = {"error": {"code": "UnsupportedQuery", "message": "filter not supported"}}
        return web.json_response(error, status=400)

    fake.on("GET", ASSIGNMENTS, answer)
    (ra,) = await arm.role_assignments("/subscriptions/s1", "oid-1")
    assert ra.role_guid == READER
    assert [s.query["$filter"] for s in fake.calls(ASSIGNMENTS)] == [
        "assignedTo('oid-1')",
        "atScope() and assignedTo('oid-1')",
    ]


async def test_role_assignments_403_is_not_retried_with_another_filter(
    fake: FakeAzure, arm: ArmGateway
) -> None:
    fake.json("GET", ASSIGNMENTS, {"error": {"code": "AuthorizationFailed", "message": "no"}}, status=403)
    with pytest.raises(GatewayError) as info:
        await arm.role_assignments("/subscriptions/s1", "oid-1")
    assert info.value.status == 403 and len(fake.calls(ASSIGNMENTS)) == 1


# --- deny assignments --------------------------------------------------------------------------------

# Azure/azure-rest-api-specs, authorization 2022-04-01 examples/GetDenyAssignmentByScope.json
DENY_BY_SCOPE: dict[str, Any] = {
    "value": [
        {
            "properties": {
                "denyAssignmentName": "Deny assignment name",
                "description": "Deny assignment description",
                "permissions": [
                    {"actions": ["action"], "notActions": [], "dataActions": ["action"], "notDataActions": []}
                ],
                "scope": "/subscriptions/subId",
                "doNotApplyToChildScopes": False,
                "principals": [{"id": "principalId1", "type": "principalType1"}],
                "excludePrincipals": [{"id": "principalId2", "type": "principalType2"}],
                "isSystemProtected": True,
            },
            "id": "/subscriptions/subId/providers/Microsoft.Authorization/denyAssignments/denyAssignmentId",
            "type": "Microsoft.Authorization/denyAssignments",
            "name": "denyAssignmentId",
        }
    ]
}


async def test_deny_assignments_example(fake: FakeAzure, arm: ArmGateway) -> None:
    scope = "/subscriptions/subId"
    path = f"{scope}/providers/Microsoft.Authorization/denyAssignments"
    fake.json("GET", path, DENY_BY_SCOPE)
    (da,) = await arm.deny_assignments(scope)
    assert (da.name, da.scope, da.id.rsplit("/", 1)[-1]) == (
        "Deny assignment name",
        scope,
        "denyAssignmentId",
    )
    assert da.permissions[0].actions == ("action",) and da.permissions[0].data_actions == ("action",)
    assert [(p.id, p.type) for p in da.principals] == [("principalId1", "principalType1")]
    assert [p.id for p in da.exclude_principals] == ["principalId2"]
    assert da.is_system_protected is True and da.do_not_apply_to_child_scopes is False
    assert da.description == "Deny assignment description"
    assert da.condition is None and da.permissions[0].condition is None and da.created_on is None
    (seen,) = fake.calls(path)
    assert seen.query == {"api-version": "2022-04-01", "$filter": "atScope()"}


async def test_deny_assignment_conditions_are_kept(fake: FakeAzure, arm: ArmGateway) -> None:
    doc: Any = copy.deepcopy(DENY_BY_SCOPE)
    props = doc["value"][0]["properties"]
    props["permissions"] = [{"dataActions": ["*"], "condition": "@Resource[x] StringEquals 'y'"}]
    props["doNotApplyToChildScopes"] = True
    props["createdOn"] = "2026-10-01T09:00:00.1234567Z"
    path = "/subscriptions/subId/providers/Microsoft.Authorization/denyAssignments"
    fake.json("GET", path, doc)
    (da,) = await arm.deny_assignments("/subscriptions/subId")
    assert da.permissions[0].condition == "@Resource[x] StringEquals 'y'"
    assert da.do_not_apply_to_child_scopes is True
    assert da.created_on is not None and da.created_on.isoformat().startswith("2026-10-01T09:00:00.123456")


async def test_deny_assignments_403_names_the_permission(fake: FakeAzure, arm: ArmGateway) -> None:
    path = "/subscriptions/s1/providers/Microsoft.Authorization/denyAssignments"
    fake.json("GET", path, {"error": {"code": "AuthorizationFailed", "message": "no"}}, status=403)
    with pytest.raises(GatewayError) as info:
        await arm.deny_assignments("/subscriptions/s1")
    assert info.value.status == 403
    assert info.value.permission == "Microsoft.Authorization/denyAssignments/read (Reader)"


# --- role definitions: built-ins from ARM, kept an hour, the bundled table only as the fallback ----------


async def test_builtin_is_read_from_arm_and_kept_for_the_ttl(
    fake: FakeAzure, arm: ArmGateway, clock: Clock
) -> None:
    # ARM's Reader has gained a data action the bundled copy lacks: ARM's answer is the one judged
    fake.json("GET", READER_ID, role_doc(READER, "Reader", ["Microsoft.Example/new/read"]))
    first = await arm.role_definition(READER_ID)
    assert first.source == "arm" and first.permissions[0].data_actions == ("Microsoft.Example/new/read",)
    clock.now += BUILTIN_TTL_SECONDS - 1
    # another subscription's id for the same built-in: the same GUID, not fetched again
    again = await arm.role_definition(READER_ID.replace("/subscriptions/s/", "/subscriptions/other/"))
    assert again == first and len(fake.calls(READER_ID)) == 1
    clock.now += 2
    await arm.role_definition(READER_ID)
    assert len(fake.calls(READER_ID)) == 2


async def test_builtin_falls_back_to_the_bundled_table_when_arm_refuses(
    fake: FakeAzure, arm: ArmGateway
) -> None:
    body = {"error": {"code": "AuthorizationFailed", "message": "no roleDefinitions/read"}}
    fake.json("GET", READER_ID, body, status=403)
    reader = await arm.role_definition(READER_ID)
    assert reader.role_name == "Reader" and reader.permissions[0].actions == ("*/read",)
    assert reader.source == "bundled" and reader.role_type == "BuiltInRole"
    await arm.role_definition(READER_ID)  # a refusal is not kept: the next diagnosis asks again
    assert len(fake.calls(READER_ID)) == 2


async def test_builtin_falls_back_when_arm_fails(fake: FakeAzure, arm: ArmGateway) -> None:
    blob_id = f"/providers/Microsoft.Authorization/roleDefinitions/{BLOB_READER}"
    fake.json("GET", blob_id, {"error": {"code": "InternalServerError", "message": "x"}}, status=500)
    blob = await arm.role_definition(blob_id)
    assert blob.role_name == "Storage Blob Data Reader" and blob.source == "bundled"


async def test_custom_roles_are_never_kept_and_never_fall_back(fake: FakeAzure, arm: ArmGateway) -> None:
    guid = "99999999-0000-0000-0000-000000000001"
    rid = f"/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{guid}"
    fake.json("GET", rid, role_doc(guid, "Scanner (custom)", ["*"], role_type="CustomRole"))
    await arm.role_definition(rid)
    await arm.role_definition(rid)
    assert len(fake.calls(rid)) == 2
    other = rid.replace("0001", "0002")
    fake.json("GET", other, {"error": {"code": "AuthorizationFailed", "message": "no"}}, status=403)
    with pytest.raises(GatewayError):
        await arm.role_definition(other)


async def test_a_builtin_newer_than_the_bundled_table_is_kept(
    fake: FakeAzure, arm: ArmGateway, clock: Clock
) -> None:
    guid = "11111111-2222-3333-4444-000000000000"
    rid = f"/providers/Microsoft.Authorization/roleDefinitions/{guid}"
    fake.json("GET", rid, role_doc(guid, "Brand New Built-in", ["*"]))
    await arm.role_definition(rid)
    await arm.role_definition(rid)
    assert len(fake.calls(rid)) == 1
