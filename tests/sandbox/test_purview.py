"""Purview scanning API stand-in: world documents, envelopes, paging, rewritten vault URLs, errors."""

from __future__ import annotations

from sandbox import Sandbox
from tests.sandbox.conftest import ARM, PURVIEW, VAULT, Caller, client_session, get_token

V = {"api-version": "2023-09-01"}
BASE = "/purview/contoso-pv/scan"


async def get(call: Caller, path: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    status, body, _ = await call("GET", BASE + path, scope=PURVIEW, params=V)
    return status, body


async def test_data_sources_omit_scans(call: Caller) -> None:
    status, body = await get(call, "/datasources")
    assert status == 200
    assert [d["name"] for d in body["value"]] == ["sales-adls", "sales-sql"]
    assert body["count"] == 2 and body["nextLink"] is None
    assert all("scans" not in d for d in body["value"])
    status, one = await get(call, "/datasources/SALES-ADLS")
    assert status == 200 and one["kind"] == "AdlsGen2" and "scans" not in one


async def test_scans_and_runs(call: Caller) -> None:
    _, scans = await get(call, "/datasources/sales-sql/scans")
    assert [(s["name"], s["dataSourceName"]) for s in scans["value"]] == [("nightly", "sales-sql")]
    status, scan = await get(call, "/datasources/sales-sql/scans/nightly")
    assert status == 200 and scan["properties"]["credential"]["referenceName"] == "sql-cred"
    _, runs = await get(call, "/datasources/sales-adls/scans/weekly/runs")
    assert [r["id"] for r in runs["value"]] == ["run-3", "run-2", "run-1"]  # newest first, as given
    _, no_runs = await get(call, "/datasources/sales-sql/scans/nightly/runs")
    assert no_runs["value"] == [] and no_runs["count"] == 0
    status, one = await get(call, "/datasources/sales-adls/scans/weekly/runs/run-1")
    assert status == 200 and one["value"]["status"] == "Succeeded"


async def test_credentials_vaults_and_runtimes(sb: Sandbox, call: Caller) -> None:
    _, creds = await get(call, "/credentials")
    assert [c["name"] for c in creds["value"]] == ["sql-cred"]
    _, cred = await get(call, "/credentials/sql-cred")
    assert cred["properties"]["typeProperties"]["password"]["secretName"] == "sql-password"
    _, vaults = await get(call, "/azureKeyVaults")
    _, vault = await get(call, "/azureKeyVaults/kv-sales-conn")
    assert (
        vault["properties"]["baseUrl"]
        == f"{sb.url}/kv/kv-sales/"
        == vaults["value"][0]["properties"]["baseUrl"]
    )
    status, arm_vault, _ = await call("GET", VAULT, scope=ARM, params={"api-version": "2022-07-01"})
    assert arm_vault["properties"]["vaultUri"] == vault["properties"]["baseUrl"]  # consistent rewrite
    _, runtimes = await get(call, "/integrationruntimes")
    assert [r["name"] for r in runtimes["value"]] == ["shir-01", "managed-ir"]
    _, status_doc = await get(call, "/integrationruntimes/shir-01/status")
    assert status_doc["properties"]["state"] == "Offline"
    status, missing = await get(call, "/integrationruntimes/managed-ir/status")
    assert status == 404 and missing["error"]["code"] == "NotFound"
    _, endpoints = await get(call, "/managedvirtualnetworks/default/managedprivateendpoints")
    assert endpoints["value"][0]["properties"]["connectionState"]["status"] == "Pending"


async def test_unknown_names_are_404(call: Caller) -> None:
    for path in (
        "/datasources/nope",
        "/datasources/sales-adls/scans/nope",
        "/datasources/sales-adls/scans/nope/runs",
        "/credentials/nope",
        "/azureKeyVaults/nope",
        "/integrationruntimes/nope",
        "/managedvirtualnetworks/nope/managedprivateendpoints",
    ):
        status, body = await get(call, path)
        assert (status, body["error"]["code"]) == (404, "NotFound"), path
        assert body["error"]["message"]
    status, body, _ = await call("GET", "/purview/no-such-account/scan/datasources", scope=PURVIEW, params=V)
    assert status == 404


async def test_auth_and_api_version(call: Caller) -> None:
    status, body, _ = await call("GET", BASE + "/datasources", params=V)
    assert (status, body["error"]["code"]) == (401, "Unauthorized")
    status, body, _ = await call("GET", BASE + "/datasources", scope=ARM, params=V)
    assert status == 401
    status, body, _ = await call("GET", BASE + "/datasources", scope=PURVIEW)
    assert (status, body["error"]["code"]) == (400, "MissingApiVersionParameter")


async def test_paging(paged_sb: Sandbox) -> None:
    async with client_session(paged_sb) as http:
        headers = {"Authorization": f"Bearer {await get_token(paged_sb, http, PURVIEW)}"}
        url: str | None = f"{paged_sb.url}{BASE}/datasources?api-version=2023-09-01"
        names = []
        while url:
            async with http.get(url, headers=headers) as resp:
                body = await resp.json()
            assert body["count"] == 2
            names += [d["name"] for d in body["value"]]
            url = body["nextLink"]
    assert names == ["sales-adls", "sales-sql"]
