"""Graph stand-in: service principals, users, groups and applications, memberships, Graph's error bodies;
and the product's Graph gateway over it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from checks.errors import GatewayError, NotFoundError
from checks.facts import Facts, Gateways
from checks.gateways.api import GraphApi
from sandbox import Sandbox, load_world
from tests.fakes import FakeWorld
from tests.sandbox.conftest import (
    ALICE,
    ARM,
    BOB,
    GRAPH,
    GROUP_OUTER,
    SCANNER_APP_ID,
    Caller,
    Json,
    client_session,
    get_token,
    product_clients,
)


async def test_service_principal_by_app_id(call: Caller) -> None:
    status, body, _ = await call(
        "GET",
        "/graph/v1.0/servicePrincipals",
        scope=GRAPH,
        params={"$filter": f"appId eq '{SCANNER_APP_ID}'"},
    )
    assert status == 200
    assert body["@odata.context"].endswith("$metadata#servicePrincipals")
    assert [(p["id"], p["displayName"]) for p in body["value"]] == [
        ("aaaaaaaa-0000-0000-0000-000000000002", "scanner-app")
    ]
    assert body["value"][0]["appId"] == SCANNER_APP_ID
    _, none, _ = await call(
        "GET", "/graph/v1.0/servicePrincipals", scope=GRAPH, params={"$filter": "appId eq 'unknown'"}
    )
    assert none["value"] == []


async def test_users_by_upn_or_id(call: Caller) -> None:
    status, by_upn, _ = await call("GET", "/graph/v1.0/users/Alice@Contoso.com", scope=GRAPH)
    assert status == 200 and by_upn["id"] == ALICE and by_upn["userPrincipalName"] == "alice@contoso.com"
    _, by_id, _ = await call("GET", f"/graph/v1.0/users/{ALICE}", scope=GRAPH)
    assert by_id["displayName"] == "Alice"
    status, missing, _ = await call("GET", "/graph/v1.0/users/nobody@contoso.com", scope=GRAPH)
    assert (status, missing["error"]["code"]) == (404, "Request_ResourceNotFound")
    # groups and service principals are not users
    status, _, _ = await call("GET", "/graph/v1.0/users/aaaaaaaa-0000-0000-0000-000000000005", scope=GRAPH)
    assert status == 404


async def test_graph_auth_and_unsupported_filter(call: Caller) -> None:
    status, body, _ = await call("GET", "/graph/v1.0/users/alice@contoso.com")
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationToken")
    status, body, _ = await call("GET", "/graph/v1.0/users/alice@contoso.com", scope=ARM)
    assert status == 401
    status, body, _ = await call(
        "GET", "/graph/v1.0/servicePrincipals", scope=GRAPH, params={"$filter": "startswith(displayName,'a')"}
    )
    assert (status, body["error"]["code"]) == (400, "Request_UnsupportedQuery")


# --- group membership, app registrations and their credentials ------------------------------------------

SCANNER = "aaaaaaaa-0000-0000-0000-000000000002"
PV_MSI = "aaaaaaaa-0000-0000-0000-000000000001"
GROUP_INNER = "aaaaaaaa-0000-0000-0000-000000000004"
UAMI = "aaaaaaaa-0000-0000-0000-000000000007"
SECRET = {
    "keyId": "c2f1e0d9-0000-4000-8000-00000000c0de",
    "displayName": "purview-scan",
    "hint": "Xy~",
    "startDateTime": "2026-06-01T09:00:00Z",
    "endDateTime": "2026-12-01T09:00:00Z",
    "secretText": "never served",
}
CERT = {"keyId": "c2f1e0d9-0000-4000-8000-00000000ce57", "endDateTime": "2027-01-01T00:00:00Z"}


def graph_world(world_data: Json, **extra: Any) -> Json:
    """The minimal world where scanner-app has a client secret and a certificate and sits in the inner
    group, and a user-assigned managed identity carries its own credential."""
    principals = [dict(p) for p in world_data["principals"]]
    for p in principals:
        if p["id"] == SCANNER:
            p.update(passwordCredentials=[SECRET], keyCredentials=[CERT], memberOf=[GROUP_INNER])
    principals.append(
        {
            "id": UAMI,
            "type": "ServicePrincipal",
            "displayName": "uami-scan",
            "appId": "cccccccc-0000-0000-0000-0000000000c3",
            "servicePrincipalType": "ManagedIdentity",
            "keyCredentials": [CERT],
        }
    )
    return {**world_data, "principals": principals, **extra}


@pytest.fixture
async def graph_sb(world_data: Json) -> AsyncIterator[Sandbox]:
    async with Sandbox(load_world(graph_world(world_data), rebase_to=None)) as sandbox:
        yield sandbox


@pytest.fixture
def graph_call(graph_sb: Sandbox) -> Caller:
    async def _call(path: str, params: dict[str, str] | None = None) -> tuple[int, Json, Any]:
        async with client_session(graph_sb) as http:
            token = await get_token(graph_sb, http, GRAPH)
            headers = {"Authorization": f"Bearer {token}"}
            url = path if path.startswith("https://") else graph_sb.url + path
            async with http.get(url, headers=headers, params=params) as resp:
                return resp.status, await resp.json(content_type=None), resp.headers

    return _call


async def test_transitive_member_of_follows_nested_groups(call: Caller) -> None:
    path = f"/graph/v1.0/users/{ALICE}/transitiveMemberOf"
    status, body, _ = await call("GET", path, scope=GRAPH, params={"$select": "id"})
    assert status == 200
    assert body["@odata.context"].endswith("$metadata#directoryObjects(id)")
    assert body["value"] == [
        {"@odata.type": "#microsoft.graph.group", "id": GROUP_INNER},
        {"@odata.type": "#microsoft.graph.group", "id": GROUP_OUTER},
    ]
    _, direct, _ = await call("GET", f"/graph/v1.0/users/{ALICE}/memberOf", scope=GRAPH)
    assert [(g["id"], g["displayName"]) for g in direct["value"]] == [(GROUP_INNER, "data-readers")]
    # by UPN, with the OData cast to groups (items then carry no @odata.type)
    _, cast, _ = await call(
        "GET", "/graph/v1.0/users/alice@contoso.com/transitiveMemberOf/microsoft.graph.group", scope=GRAPH
    )
    assert cast["@odata.context"].endswith("$metadata#groups")
    assert [g["id"] for g in cast["value"]] == [GROUP_INNER, GROUP_OUTER]
    assert "@odata.type" not in cast["value"][0]
    _, roles, _ = await call(
        "GET", f"/graph/v1.0/users/{ALICE}/transitiveMemberOf/microsoft.graph.directoryRole", scope=GRAPH
    )
    assert roles["value"] == []
    _, groups, _ = await call("GET", f"/graph/v1.0/groups/{GROUP_INNER}/transitiveMemberOf", scope=GRAPH)
    assert [g["id"] for g in groups["value"]] == [GROUP_OUTER]
    _, none, _ = await call("GET", f"/graph/v1.0/servicePrincipals/{PV_MSI}/transitiveMemberOf", scope=GRAPH)
    assert none["value"] == []


async def test_membership_errors_are_graphs(call: Caller) -> None:
    # an object of another type, or of none, is 404 on a typed path
    status, body, _ = await call(
        "GET", f"/graph/v1.0/servicePrincipals/{ALICE}/transitiveMemberOf", scope=GRAPH
    )
    assert (status, body["error"]["code"]) == (404, "Request_ResourceNotFound")
    assert "request-id" in body["error"]["innerError"]
    status, _, _ = await call("GET", "/graph/v1.0/users/nobody@contoso.com/memberOf", scope=GRAPH)
    assert status == 404
    # directoryObject has no transitiveMemberOf in v1.0, and an unknown cast is no segment either
    status, body, _ = await call(
        "GET", f"/graph/v1.0/directoryObjects/{ALICE}/transitiveMemberOf", scope=GRAPH
    )
    assert (status, body["error"]["code"]) == (400, "BadRequest")
    status, _, _ = await call("GET", f"/graph/v1.0/users/{ALICE}/memberOf/microsoft.graph.robot", scope=GRAPH)
    assert status == 400
    status, body, _ = await call(
        "GET", f"/graph/v1.0/users/{ALICE}/memberOf", scope=GRAPH, params={"$select": "id,shoeSize"}
    )
    assert status == 400 and "shoeSize" in body["error"]["message"]


async def test_membership_pages(paged_sb: Sandbox) -> None:
    async with client_session(paged_sb) as http:
        token = await get_token(paged_sb, http, GRAPH)
        url: str | None = f"{paged_sb.url}/graph/v1.0/users/{ALICE}/transitiveMemberOf?$select=id"
        ids: list[str] = []
        while url:
            async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
                body = await resp.json()
            ids += [g["id"] for g in body["value"]]
            url = body.get("@odata.nextLink")
    assert ids == [GROUP_INNER, GROUP_OUTER]


async def test_application_serves_its_credentials_with_select(graph_call: Caller) -> None:
    status, body, _ = await graph_call(
        "/graph/v1.0/applications", {"$filter": f"appId eq '{SCANNER_APP_ID}'"}
    )
    assert status == 200 and body["@odata.context"].endswith("$metadata#applications")
    (app,) = body["value"]
    assert app["appId"] == SCANNER_APP_ID and app["id"] != SCANNER  # the app object is not the SP
    (secret,) = app["passwordCredentials"]
    assert secret == {
        "customKeyIdentifier": None,
        "displayName": "purview-scan",
        "endDateTime": "2026-12-01T09:00:00Z",
        "hint": "Xy~",
        "keyId": SECRET["keyId"],
        "secretText": None,  # Graph never lists a secret's text
        "startDateTime": "2026-06-01T09:00:00Z",
    }
    (cert,) = app["keyCredentials"]
    assert (cert["type"], cert["usage"], cert["key"], cert["endDateTime"]) == (
        "AsymmetricX509Cert",
        "Verify",
        None,
        "2027-01-01T00:00:00Z",
    )
    _, cut, _ = await graph_call(
        "/graph/v1.0/applications",
        {"$filter": f"appId eq '{SCANNER_APP_ID}'", "$select": "appId,passwordCredentials"},
    )
    assert cut["@odata.context"].endswith("$metadata#applications(appId,passwordCredentials)")
    assert set(cut["value"][0]) == {"appId", "passwordCredentials"}
    # by its own object id and by the appId alternate key
    _, by_id, _ = await graph_call(f"/graph/v1.0/applications/{app['id']}", {"$select": "id"})
    assert by_id == {"@odata.context": by_id["@odata.context"], "id": app["id"]}
    _, by_key, _ = await graph_call(f"/graph/v1.0/applications(appId='{SCANNER_APP_ID}')")
    assert by_key["passwordCredentials"][0]["keyId"] == SECRET["keyId"]
    # a managed identity has no app registration
    _, none, _ = await graph_call(
        "/graph/v1.0/applications", {"$filter": "appId eq 'cccccccc-0000-0000-0000-0000000000c3'"}
    )
    assert none["value"] == []
    status, body, _ = await graph_call("/graph/v1.0/applications", {"$select": "nope"})
    assert (status, body["error"]["code"]) == (400, "BadRequest")


async def test_service_principals_carry_credentials_only_without_an_app_registration(
    graph_call: Caller,
) -> None:
    _, scanner, _ = await graph_call(
        f"/graph/v1.0/servicePrincipals(appId='{SCANNER_APP_ID}')",
        {"$select": "id,servicePrincipalType,passwordCredentials,keyCredentials"},
    )
    assert scanner["servicePrincipalType"] == "Application"
    assert scanner["passwordCredentials"] == [] and scanner["keyCredentials"] == []
    _, uami, _ = await graph_call(
        "/graph/v1.0/servicePrincipals",
        {"$filter": "appId eq 'cccccccc-0000-0000-0000-0000000000c3'", "$select": "id,keyCredentials"},
    )
    assert uami["@odata.context"].endswith("$metadata#servicePrincipals(id,keyCredentials)")
    assert uami["value"] == [{"id": UAMI, "keyCredentials": [uami["value"][0]["keyCredentials"][0]]}]
    assert uami["value"][0]["keyCredentials"][0]["keyId"] == CERT["keyId"]


# --- the product's gateway over the sandbox ----------------------------------------------------------------


@contextlib.asynccontextmanager
async def graph_gateway(sandbox: Sandbox) -> AsyncIterator[GraphApi]:
    async with product_clients(sandbox) as clients:
        yield clients.graph


def graph_paths(sandbox: Sandbox) -> list[tuple[str, int]]:
    return [(r.path, r.status) for r in sandbox.requests if r.host_area == "graph"]


async def test_gateway_transitive_group_ids_for_each_kind_of_object(graph_sb: Sandbox) -> None:
    async with graph_gateway(graph_sb) as graph:
        assert await graph.transitive_group_ids(SCANNER) == {GROUP_INNER, GROUP_OUTER}
        assert graph_paths(graph_sb) == [(f"/graph/v1.0/servicePrincipals/{SCANNER}/transitiveMemberOf", 200)]
        assert graph_sb.requests[-1].query == {"$select": "id"}
        graph_sb.clear_requests()
        assert await graph.transitive_group_ids(ALICE.upper()) == {GROUP_INNER, GROUP_OUTER}  # lower case
        assert [status for _, status in graph_paths(graph_sb)] == [404, 200]  # not a service principal
        assert await graph.transitive_group_ids(GROUP_INNER) == {GROUP_OUTER}
        assert await graph.transitive_group_ids(BOB) == frozenset()
        with pytest.raises(NotFoundError) as missing:
            await graph.transitive_group_ids("aaaaaaaa-0000-0000-0000-0000000000ff")
        assert missing.value.status == 404


async def test_gateway_follows_pages(world_data: Json) -> None:
    async with Sandbox(load_world(graph_world(world_data, pageSize=1), rebase_to=None)) as sandbox:
        async with graph_gateway(sandbox) as graph:
            assert await graph.transitive_group_ids(SCANNER) == {GROUP_INNER, GROUP_OUTER}
        paths = graph_paths(sandbox)
        assert len(paths) == 2 and sandbox.requests[-1].query.get("$skiptoken") == "1"


async def test_gateway_refused_names_the_call_and_permission(graph_sb: Sandbox) -> None:
    graph_sb.add_fault({"path": r"/graph/v1\.0/servicePrincipals/.*/transitiveMemberOf", "status": 403})
    async with graph_gateway(graph_sb) as graph:
        with pytest.raises(GatewayError) as refused:
            await graph.transitive_group_ids(SCANNER)
    error = refused.value
    assert not isinstance(error, NotFoundError)
    assert (error.status, error.code) == (403, "Authorization_RequestDenied")
    assert SCANNER in error.call and "Application.Read.All" in (error.permission or "")
    assert "Application.Read.All" in error.reason


async def test_facts_memoise_group_ids(graph_sb: Sandbox) -> None:
    async with graph_gateway(graph_sb) as graph:
        fake = FakeWorld({"purview": {"pv": {}}})
        facts = Facts(Gateways(purview=fake, arm=fake, keyvault=fake, graph=graph), "pv")  # type: ignore[arg-type]
        first, second = await asyncio.gather(
            facts.transitive_group_ids(SCANNER), facts.transitive_group_ids(SCANNER.upper())
        )
    assert first == second == {GROUP_INNER, GROUP_OUTER}
    assert len(graph_paths(graph_sb)) == 1
