"""ARM stand-in: subscriptions, groups, resources, lists, paging, errors and the plane's auth rules."""

from __future__ import annotations

from sandbox import Sandbox
from tests.sandbox.conftest import (
    ARM,
    PURVIEW,
    RG_DATA,
    SQL_DB,
    SQL_SERVER,
    STORAGE,
    SUB,
    VAULT,
    Caller,
    client_session,
    get_token,
)

V = {"api-version": "2023-05-01"}


async def test_subscriptions_and_groups(call: Caller) -> None:
    status, body, _ = await call("GET", "/subscriptions", scope=ARM, params=V)
    assert status == 200
    assert [s["subscriptionId"] for s in body["value"]] == [SUB]
    assert body["value"][0]["displayName"] == "Contoso Production"
    status, body, _ = await call("GET", f"/subscriptions/{SUB}", scope=ARM, params=V)
    assert status == 200 and body["id"] == f"/subscriptions/{SUB}"
    status, body, _ = await call("GET", f"/subscriptions/{SUB}/resourceGroups/RG-Data", scope=ARM, params=V)
    assert status == 200
    assert body["name"] == "rg-data" and body["type"] == "Microsoft.Resources/resourceGroups"
    assert body["location"] == "westeurope"


async def test_not_found_errors_use_arm_codes(call: Caller) -> None:
    status, body, _ = await call("GET", "/subscriptions/nope", scope=ARM, params=V)
    assert (status, body["error"]["code"]) == (404, "SubscriptionNotFound")
    status, body, _ = await call("GET", f"/subscriptions/{SUB}/resourceGroups/nope", scope=ARM, params=V)
    assert (status, body["error"]["code"]) == (404, "ResourceGroupNotFound")
    status, body, _ = await call("GET", STORAGE.replace("salesadls", "missing"), scope=ARM, params=V)
    assert (status, body["error"]["code"]) == (404, "ResourceNotFound")
    assert "missing" in body["error"]["message"]
    status, body, _ = await call("GET", STORAGE.replace("rg-data", "rg-none"), scope=ARM, params=V)
    assert (status, body["error"]["code"]) == (404, "ResourceGroupNotFound")


async def test_resource_get_is_case_insensitive(call: Caller) -> None:
    status, body, _ = await call("GET", STORAGE.upper(), scope=ARM, params=V)
    assert status == 200
    assert body["id"] == STORAGE
    assert body["type"] == "Microsoft.Storage/storageAccounts" and body["name"] == "salesadls"
    status, body, _ = await call("GET", SQL_DB, scope=ARM, params=V)
    assert status == 200 and body["type"] == "Microsoft.Sql/servers/databases"


async def test_lists_by_type_in_subscription_group_and_parent(call: Caller) -> None:
    path = f"/subscriptions/{SUB}/providers/Microsoft.Storage/storageAccounts"
    status, body, _ = await call("GET", path, scope=ARM, params=V)
    assert status == 200
    assert sorted(r["name"] for r in body["value"]) == ["archive", "salesadls", "scanwesteurope1"]
    status, body, _ = await call(
        "GET", f"{RG_DATA}/providers/Microsoft.Storage/storageAccounts", scope=ARM, params=V
    )
    assert sorted(r["name"] for r in body["value"]) == ["archive", "salesadls"]
    status, body, _ = await call("GET", f"{SQL_SERVER}/databases", scope=ARM, params=V)
    assert [r["name"] for r in body["value"]] == ["orders"]
    status, body, _ = await call(
        "GET", f"/subscriptions/{SUB}/providers/Microsoft.Sql/servers", scope=ARM, params=V
    )
    assert [r["name"] for r in body["value"]] == ["sales-sql"]


async def test_vault_uri_is_rewritten_to_the_sandbox(sb: Sandbox, call: Caller) -> None:
    _, body, _ = await call("GET", VAULT, scope=ARM, params=V)
    assert body["properties"]["vaultUri"] == f"{sb.url}/kv/kv-sales/"
    _, body, _ = await call(
        "GET", f"/subscriptions/{SUB}/providers/Microsoft.KeyVault/vaults", scope=ARM, params=V
    )
    assert body["value"][0]["properties"]["vaultUri"] == f"{sb.url}/kv/kv-sales/"
    assert sb.world.resources[4]["properties"]["vaultUri"] == "https://kv-sales.vault.azure.net/"


async def test_lists_page_with_absolute_next_links(paged_sb: Sandbox) -> None:
    async with client_session(paged_sb) as http:
        token = await get_token(paged_sb, http, ARM)
        url: str | None = f"{paged_sb.url}/subscriptions/{SUB}/providers/Microsoft.Storage/storageAccounts"
        names, links = [], []
        params: dict[str, str] | None = V
        while url:
            async with http.get(url, params=params, headers={"Authorization": f"Bearer {token}"}) as resp:
                body = await resp.json()
            names += [r["name"] for r in body["value"]]
            url = body.get("nextLink")
            params = None
            if url:
                links.append(url)
    assert sorted(names) == ["archive", "salesadls", "scanwesteurope1"]
    assert len(links) == 2
    assert all(link.startswith(paged_sb.url + "/subscriptions/") for link in links)
    assert all("api-version=2023-05-01" in link and "$skiptoken=" in link for link in links)


async def test_missing_api_version_is_400(call: Caller) -> None:
    status, body, _ = await call("GET", STORAGE, scope=ARM)
    assert status == 400
    assert body["error"]["code"] == "MissingApiVersionParameter"


async def test_token_is_required_with_the_arm_audience(sb: Sandbox, call: Caller) -> None:
    status, body, headers = await call("GET", STORAGE, params=V)
    assert (status, body["error"]["code"]) == (401, "AuthenticationFailed")
    assert headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")
    status, body, _ = await call("GET", STORAGE, scope=PURVIEW, params=V)
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationTokenAudience")
    recorded = [r for r in sb.requests if r.host_area == "arm"]
    assert [(r.status, r.authorized) for r in recorded] == [(401, False), (401, False)]
