"""Graph stand-in: service principals by app id, users by UPN or id, Graph's error bodies."""

from __future__ import annotations

from tests.sandbox.conftest import ALICE, ARM, GRAPH, SCANNER_APP_ID, Caller


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
