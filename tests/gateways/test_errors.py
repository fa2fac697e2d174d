"""Failures become typed errors naming the call and the permission; retries, deadlines and paging hold."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp import web

from checks.errors import CallTimeoutError, GatewayError, NotFoundError
from checks.gateways import keyvault, purview

PV = "/purview/acct/scan"
RID = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st"
TOKEN = "fake-token-not-a-secret"


def sequence(*answers: tuple[int, Any, dict[str, str]]) -> Any:
    """A handler answering in turn; the last answer repeats."""
    queue = list(answers)

    async def answer(_: web.Request) -> web.StreamResponse:
        status, body, headers = queue.pop(0) if len(queue) > 1 else queue[0]
        return web.json_response(body, status=status, headers=headers)

    return answer


async def test_key_vault_forbidden_by_rbac(fake: Any, clients: Any) -> None:
    body = {
        "error": {
            "code": "Forbidden",
            "message": "Caller is not authorized to perform action on resource.\r\nAction: 'readMetadata'",
            "innererror": {"code": "ForbiddenByRbac"},
        }
    }
    fake.vault("/kv/v1/secrets/s1/versions", body, status=403)
    with pytest.raises(GatewayError) as info:
        await clients.keyvault.secret_versions(f"{fake.url}/kv/v1", "s1")
    err = info.value
    assert not isinstance(err, NotFoundError)
    assert (err.status, err.code, err.permission) == (403, "ForbiddenByRbac", keyvault.PERMISSION)
    assert "\n" not in err.message and err.message.startswith("Caller is not authorized")
    assert "s1" in err.call and keyvault.PERMISSION in err.reason


async def test_key_vault_secret_not_found(fake: Any, clients: Any) -> None:
    body = {"error": {"code": "SecretNotFound", "message": "A secret with (name/id) s1 was not found"}}
    fake.vault("/kv/v1/secrets/s1/versions", body, status=404)
    with pytest.raises(NotFoundError) as info:
        await clients.keyvault.secret_versions(f"{fake.url}/kv/v1", "s1")
    assert info.value.code == "SecretNotFound"


async def test_purview_404_is_not_found(fake: Any, clients: Any) -> None:
    body = {"error": {"code": "DataSourceNotFound", "message": "Data source sales-adls not found"}}
    fake.json("GET", f"{PV}/datasources/sales-adls", body, status=404)
    with pytest.raises(NotFoundError) as info:
        await clients.purview("acct").data_source("sales-adls")
    assert info.value.call.startswith("GET Purview data source sales-adls")
    assert (info.value.status, info.value.code) == (404, "DataSourceNotFound")


async def test_purview_403_names_the_collection_role(fake: Any, clients: Any) -> None:
    body = {"error": {"code": "Unauthorized", "message": "Not authorized to access account"}}
    fake.json("GET", f"{PV}/datasources", body, status=403)
    with pytest.raises(GatewayError) as info:
        await clients.purview("acct").data_sources()
    assert info.value.permission == purview.PERMISSION and "Data Source Administrator" in info.value.reason


async def test_arm_role_assignments_403_through_the_sdk(fake: Any, clients: Any) -> None:
    body = {"error": {"code": "AuthorizationFailed", "message": "The client does not have authorization"}}
    fake.json("GET", "/subscriptions/s1/providers/Microsoft.Authorization/roleAssignments", body, status=403)
    with pytest.raises(GatewayError) as info:
        await clients.arm.role_assignments("/subscriptions/s1", "oid-1")
    assert (info.value.status, info.value.code) == (403, "AuthorizationFailed")
    assert info.value.permission == "Microsoft.Authorization/roleAssignments/read (Reader)"


async def test_graph_404_is_none_and_403_names_permission(fake: Any, clients: Any) -> None:
    fake.json(
        "GET", "/graph/v1.0/users/ann@contoso.com", {"error": {"code": "Request_ResourceNotFound"}}, 404
    )
    assert await clients.graph.user_by_upn("ann@contoso.com") is None
    fake.json("GET", "/graph/v1.0/servicePrincipals", {"error": {"code": "Authorization_RequestDenied"}}, 403)
    with pytest.raises(GatewayError) as info:
        await clients.graph.service_principal_by_app_id("app-1")
    assert "Application.Read.All" in info.value.reason


async def test_graph_reads(fake: Any, clients: Any) -> None:
    sp = {"id": "oid-1", "appId": "app-1", "displayName": "scanner"}
    fake.json("GET", "/graph/v1.0/servicePrincipals", {"value": [sp]})
    fake.json(
        "GET", "/graph/v1.0/users/ann@contoso.com", {"id": "u1", "userPrincipalName": "ann@contoso.com"}
    )
    assert await clients.graph.service_principal_by_app_id("app-1") == sp
    assert (await clients.graph.user_by_upn("ann@contoso.com"))["id"] == "u1"
    (seen,) = fake.calls("/graph/v1.0/servicePrincipals")
    assert seen.query["$filter"] == "appId eq 'app-1'" and "api-version" not in seen.query
    fake.json("GET", "/graph/v1.0/servicePrincipals", {"value": []})
    assert await clients.graph.service_principal_by_app_id("app-2") is None


@pytest.mark.parametrize("retry_after", ["0", "1"])
async def test_throttled_then_ok(retry_after: str, fake: Any, clients: Any) -> None:
    throttled = {"error": {"code": "TooManyRequests", "message": "slow down"}}
    fake.on("GET", RID, sequence((429, throttled, {"Retry-After": retry_after}), (200, {"id": RID}, {})))
    assert await clients.arm.resource(RID) == {"id": RID}
    assert len(fake.calls(RID)) == 2


async def test_post_throttled_then_ok(fake: Any, clients: Any) -> None:
    path = f"{RID}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults"
    fake.on("POST", path, sequence((429, {}, {"Retry-After": "0"}), (200, {"value": [{"a": 1}]}, {})))
    assert await clients.arm.deny_policy_states(RID) == [{"a": 1}]


async def test_persistent_500_ends_as_gateway_error(fake: Any, clients: Any) -> None:
    fake.json("GET", RID, {"error": {"code": "InternalServerError", "message": "boom"}}, status=500)
    with pytest.raises(GatewayError) as info:
        await clients.arm.resource(RID)
    assert (info.value.status, info.value.code) == (500, "InternalServerError")
    assert len(fake.calls(RID)) == 4  # the first try and FAST_RETRY.total retries


async def test_slow_server_times_out(fake: Any, make_clients: Any) -> None:
    gate = asyncio.Event()

    async def slow(_: web.Request) -> web.StreamResponse:
        await asyncio.wait_for(gate.wait(), 3)
        return web.json_response({})

    fake.on("GET", f"{PV}/datasources", slow)
    clients = await make_clients(call_timeout=0.3)
    started = asyncio.get_running_loop().time()
    with pytest.raises(CallTimeoutError) as info:
        await clients.purview("acct").data_sources()
    assert asyncio.get_running_loop().time() - started < 2
    assert info.value.code == "Timeout" and "0.3" in info.value.message
    gate.set()


async def test_credential_without_token(fake: Any, make_clients: Any, failing_credential: Any) -> None:
    clients = await make_clients(cred=failing_credential)
    fake.json("GET", RID, {"id": RID})
    fake.vault("/kv/v1/secrets/s1/versions", {"value": []})
    for read in (
        lambda: clients.arm.resource(RID),
        lambda: clients.keyvault.secret_versions(f"{fake.url}/kv/v1", "s1"),
    ):
        with pytest.raises(GatewayError) as info:
            await read()
        err = info.value
        assert err.code == "CredentialUnavailable" and err.status is None
        assert "could not get a token" in err.message and "AZURE_CLIENT_ID is not set" in err.message
        assert "second line" not in err.message
    assert not any(s.authorized for s in fake.seen)


async def test_paging_readds_api_version_and_stops_on_a_loop(fake: Any, clients: Any) -> None:
    path = f"{PV}/datasources"
    page1 = {"value": [{"name": "a"}], "nextLink": f"{fake.url}{path}?$skipToken=2"}
    page2 = {"value": [{"name": "b"}], "nextLink": f"{fake.url}{path}?api-version=2023-09-01&$skipToken=3"}
    page3 = {"value": [{"name": "c"}], "nextLink": f"{fake.url}{path}?$skipToken=2"}  # back to page 2

    async def pages(request: web.Request) -> web.StreamResponse:
        token = request.query.get("$skipToken", "1")
        return web.json_response({"1": page1, "2": page2, "3": page3}[token])

    fake.on("GET", path, pages)
    names = [ds["name"] for ds in await clients.purview("acct").data_sources()]
    assert names == ["a", "b", "c"]
    assert [s.query.get("api-version") for s in fake.calls(path)] == ["2023-09-01"] * 3


async def test_paging_resolves_relative_links_and_never_follows_another_host(fake: Any, clients: Any) -> None:
    path = f"{PV}/datasources"
    page1 = {"value": [{"name": "a"}], "nextLink": f"{path}?$skipToken=2"}  # relative to the list's URL
    page2 = {"value": [{"name": "b"}], "nextLink": f"https://elsewhere.example{path}?$skipToken=3"}

    async def pages(request: web.Request) -> web.StreamResponse:
        return web.json_response({"1": page1, "2": page2}[request.query.get("$skipToken", "1")])

    fake.on("GET", path, pages)
    names = [ds["name"] for ds in await clients.purview("acct").data_sources()]
    assert names == ["a", "b"]  # the bearer token never went to elsewhere.example
    assert len(fake.calls(path)) == 2


async def test_arm_paging_and_policy_odata_next_link(fake: Any, clients: Any) -> None:
    path = "/subscriptions/s1/providers/Microsoft.Sql/servers"
    fake.on(
        "GET",
        path,
        sequence(
            (200, {"value": [{"name": "a"}], "nextLink": f"{fake.url}{path}?%24skiptoken=x"}, {}),
            (200, {"value": [{"name": "b"}]}, {}),
        ),
    )
    assert [
        r["name"] for r in await clients.arm.list_resources("/subscriptions/s1", "Microsoft.Sql/servers")
    ] == [
        "a",
        "b",
    ]
    assert [s.query.get("api-version") for s in fake.calls(path)] == ["2021-11-01"] * 2

    qpath = f"{RID}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults"
    fake.on(
        "POST",
        qpath,
        sequence(
            (200, {"value": [{"n": 1}], "@odata.nextLink": f"{fake.url}{qpath}?$skiptoken=y"}, {}),
            (200, {"value": [{"n": 2}], "@odata.nextLink": None}, {}),
        ),
    )
    assert await clients.arm.deny_policy_states(RID) == [{"n": 1}, {"n": 2}]
    assert [s.query.get("api-version") for s in fake.calls(qpath)] == ["2019-10-01"] * 2


async def test_runs_newest_first(fake: Any, clients: Any) -> None:
    runs = [
        {"id": "old", "startTime": "2026-11-01T00:00:00Z"},
        {"id": "none"},
        {"id": "new", "startTime": "2026-11-27T00:00:00.1234567Z"},
        {"id": "mid", "startTime": "2026-11-20T00:00:00"},
    ]
    fake.json("GET", f"{PV}/datasources/ds/scans/s/runs", {"value": runs})
    assert [r["id"] for r in await clients.purview("acct").runs("ds", "s")] == ["new", "mid", "old", "none"]


async def test_unknown_resource_type_is_named_without_a_call(fake: Any, clients: Any) -> None:
    rid = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites/app"
    with pytest.raises(GatewayError) as info:
        await clients.arm.resource(rid)
    assert info.value.code == "UnsupportedResourceType" and "Microsoft.Web/sites" in info.value.message
    assert fake.seen == []


async def test_no_token_in_logs(fake: Any, clients: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.json("GET", RID, {"id": RID})
    fake.json("GET", f"{PV}/datasources", {"value": []})
    await clients.arm.resource(RID)
    await clients.purview("acct").data_sources()
    assert "Authorization" in caplog.text  # the header is logged, redacted
    assert TOKEN not in caplog.text
