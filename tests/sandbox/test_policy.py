"""Policy Insights stand-in: latest states of a resource, `eq` filters, OData paging, POST only."""

from __future__ import annotations

from sandbox import Sandbox
from tests.sandbox.conftest import ARM, MANAGED_STORAGE, SUB, Caller, client_session, get_token

QUERY = "/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults"
V = {"api-version": "2019-10-01"}
DENY = "complianceState eq 'NonCompliant' and policyDefinitionAction eq 'deny'"


async def test_deny_filter_on_a_resource(call: Caller) -> None:
    status, body, _ = await call("POST", MANAGED_STORAGE + QUERY, scope=ARM, params={**V, "$filter": DENY})
    assert status == 200
    assert [r["policyAssignmentName"] for r in body["value"]] == ["deny-public-storage"]
    assert body["@odata.count"] == 1 and body["@odata.nextLink"] is None
    row = body["value"][0]
    assert row["resourceId"] == MANAGED_STORAGE
    assert row["isCompliant"] is False and row["subscriptionId"] == SUB
    assert row["resourceType"] == "Microsoft.Storage/storageAccounts"


async def test_values_compare_case_insensitively_and_no_filter_returns_all(call: Caller) -> None:
    lower = "complianceState eq 'noncompliant' and policyDefinitionAction eq 'DENY'"
    _, body, _ = await call(
        "POST", MANAGED_STORAGE.upper() + QUERY, scope=ARM, params={**V, "$filter": lower}
    )
    assert [r["policyAssignmentName"] for r in body["value"]] == ["deny-public-storage"]
    _, body, _ = await call("POST", MANAGED_STORAGE + QUERY, scope=ARM, params=V)
    assert len(body["value"]) == 3
    _, body, _ = await call("POST", f"/subscriptions/{SUB}" + QUERY, scope=ARM, params={**V, "$filter": DENY})
    assert len(body["value"]) == 2  # a subscription scope covers every resource under it


async def test_bad_filter_and_get_are_rejected(call: Caller) -> None:
    status, _, _ = await call("POST", MANAGED_STORAGE + QUERY, scope=ARM, params={**V, "$filter": "x gt 1"})
    assert status == 400
    status, _, _ = await call("GET", MANAGED_STORAGE + QUERY, scope=ARM, params=V)
    assert status == 405


async def test_odata_next_link_paging(paged_sb: Sandbox) -> None:
    async with client_session(paged_sb) as http:
        headers = {"Authorization": f"Bearer {await get_token(paged_sb, http, ARM)}"}
        url: str | None = paged_sb.url + MANAGED_STORAGE + QUERY
        params: dict[str, str] | None = V
        names = []
        while url:
            async with http.post(url, headers=headers, params=params) as resp:
                body = await resp.json()
            names += [r["policyAssignmentName"] for r in body["value"]]
            url, params = body["@odata.nextLink"], None
    assert names == ["deny-public-storage", "audit-tls", "deny-locations"]
