"""The bundled sample tenant (`sandbox/worlds/sample.yaml`): its structure, and what the checks decide on it.

The structure tests read the YAML alone. The decision tests run each check of `checks/catalogue` (imported
lazily: a missing module skips its rows, it never counts as passed) over `tests.fakes.FakeWorld`.

`python -m tests.test_sample_world` prints every source's decisions, check by check.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

WORLD_PATH = Path(__file__).resolve().parents[1] / "sandbox" / "worlds" / "sample.yaml"
WORLD: dict[str, Any] = yaml.safe_load(WORLD_PATH.read_text(encoding="utf-8"))
ACCOUNT = "contoso-pv"
PV: dict[str, Any] = WORLD["purview"][ACCOUNT]
NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
REQUESTER = "oncall@contoso.com"

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
ROLE_ASSIGNMENT_PROVIDER = "/providers/Microsoft.Authorization/roleAssignments/"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"

# source → (data source kind, scan name, scan kind, self-hosted IR or None)
SOURCES: dict[str, tuple[str, str, str, str | None]] = {
    "sales-adls": ("AdlsGen2", "weekly", "AdlsGen2Msi", None),
    "finance-sql": ("AzureSqlDatabase", "nightly", "AzureSqlDatabaseCredential", None),
    "archive-blob": ("AzureStorage", "monthly", "AzureStorageCredential", None),
    "contoso-subscription": ("AzureSubscription", "full", "AzureSubscriptionMsi", None),
    "lake-private": ("AdlsGen2", "weekly", "AdlsGen2Msi", None),
    "hr-sql": ("AzureSqlDatabase", "weekly", "AzureSqlDatabaseCredential", "shir-onprem"),
    "ops-storage": ("AzureStorage", "daily", "AzureStorageMsi", None),
    "marketing-adls": ("AdlsGen2", "weekly", "AdlsGen2Msi", None),
    "healthy-blob": ("AzureStorage", "daily", "AzureStorageMsi", None),
}
# The one deliberately broken link: archive-key pins a version kv-storage does not have.
MISSING_PINNED = {"archive-key"}


def _time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _guid_of(definition_id: str) -> str:
    return definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


def _builtin_role_ids() -> set[str]:
    data = resources.files("checks") / "data" / "builtin-roles.json"
    return {r["id"].lower() for r in json.loads(data.read_text(encoding="utf-8"))}


def _resources_by_id() -> dict[str, dict[str, Any]]:
    return {r["id"].lower(): r for r in WORLD["resources"]}


def _vault_by_uri(uri: str) -> dict[str, Any] | None:
    wanted = uri.lower().rstrip("/")
    for r in WORLD["resources"]:
        if r["type"] == "Microsoft.KeyVault/vaults":
            if str(r["properties"].get("vaultUri", "")).lower().rstrip("/") == wanted:
                return r
    return None


def _secret_refs(credential: dict[str, Any]) -> list[dict[str, Any]]:
    tp = credential["properties"].get("typeProperties") or {}
    return [v for v in tp.values() if isinstance(v, dict) and v.get("type") == "AzureKeyVaultSecret"]


def _credential(name: str) -> dict[str, Any]:
    return next(c for c in PV["credentials"] if c["name"] == name)


def _kv_connection(name: str) -> dict[str, Any]:
    return next(k for k in PV["azureKeyVaults"] if k["name"] == name)


# --- structure ------------------------------------------------------------------------------------------


def test_top_level_shape() -> None:
    assert list(WORLD) == [
        "tenantId", "now", "principals", "subscriptions", "resources", "roleDefinitions",
        "roleAssignments", "policyStates", "keyVaults", "purview", "faults",
    ]  # fmt: skip
    assert WORLD["now"] == "2026-11-28T08:00:00Z"
    assert GUID.match(WORLD["tenantId"])
    assert list(WORLD["purview"]) == [ACCOUNT]
    assert WORLD["faults"] == []
    assert [s["displayName"] for s in WORLD["subscriptions"]] == [
        "Contoso Data Platform",
        "Contoso Analytics",
    ]


def test_nine_sources_with_the_intended_kinds() -> None:
    assert {ds["name"]: ds["kind"] for ds in PV["dataSources"]} == {n: v[0] for n, v in SOURCES.items()}
    for name, (_, scan_name, scan_kind, ir) in SOURCES.items():
        scans = PV["scans"][name]
        assert [(s["name"], s["kind"]) for s in scans] == [(scan_name, scan_kind)], name
        props = scans[0]["properties"]
        assert props["scanRulesetType"] == "System"
        assert (
            props["collection"]["referenceName"] == _source(name)["properties"]["collection"]["referenceName"]
        )
        via = props["connectedVia"]
        assert (via or {}).get("referenceName") == ir, name
        if scan_kind.endswith("Credential"):
            assert props["credential"]["referenceName"]
        else:
            assert "credential" not in props, name
        if scan_kind.startswith("AzureSqlDatabase"):
            assert props["serverEndpoint"] == _source(name)["properties"]["serverEndpoint"]
            assert props["databaseName"]
    assert set(PV["scans"]) == set(SOURCES)
    assert list(EXPECTED) == list(SOURCES)


def _source(name: str) -> dict[str, Any]:
    return next(ds for ds in PV["dataSources"] if ds["name"] == name)


@pytest.mark.parametrize("source", list(SOURCES))
def test_every_scan_has_two_to_four_realistic_runs_newest_first(source: str) -> None:
    kind = SOURCES[source][0]
    for scan in PV["scans"][source]:
        runs = PV["runs"][f"{source}/{scan['name']}"]
        assert 2 <= len(runs) <= 4
        starts = [_time(r["startTime"]) for r in runs]
        assert starts == sorted(starts, reverse=True), "runs must be newest first"
        for r in runs:
            assert GUID.match(r["id"])
            assert r["dataSourceType"] == kind
            assert r["scanRulesetType"] == "System"
            assert r["runType"] in ("Scheduled", "Manual")
            assert r["scanLevelType"] in ("Full", "Incremental")
            assert _time(r["startTime"]) < _time(r["endTime"]) <= NOW
            assert {"diagnostics", "discoveryExecutionDetails"} <= set(r)
            if r["status"] == "Failed":
                assert r["errorMessage"] and r["error"]["code"] and r["error"]["message"]
            else:
                assert r["status"] == "Succeeded" and r["errorMessage"] is None and r["error"] is None
    assert set(PV["runs"]) == {f"{n}/{v[1]}" for n, v in SOURCES.items()}


def test_credential_key_vault_chain_is_complete_except_the_pinned_version() -> None:
    used_vaults: set[str] = set()
    for name, (_, _, scan_kind, _) in SOURCES.items():
        if not scan_kind.endswith("Credential"):
            continue
        ref = PV["scans"][name][0]["properties"]["credential"]
        credential = _credential(ref["referenceName"])
        assert credential["kind"] == ref["credentialType"]
        secrets = _secret_refs(credential)
        assert secrets, credential["name"]
        for secret in secrets:
            connection = _kv_connection(secret["store"]["referenceName"])
            assert secret["store"]["type"] == "LinkedServiceReference"
            vault = _vault_by_uri(connection["properties"]["baseUrl"])
            assert vault is not None, f"no vault has vaultUri {connection['properties']['baseUrl']}"
            assert vault["properties"]["vaultUri"] == f"https://{vault['name']}.vault.azure.net/"
            used_vaults.add(vault["name"])
            versions = WORLD["keyVaults"][vault["name"]]["secrets"][secret["secretName"]]
            assert versions
            pinned = secret["secretVersion"]
            if pinned:
                assert HEX32.match(pinned)
                present = pinned in {v["version"] for v in versions}
                assert present is (credential["name"] not in MISSING_PINNED), credential["name"]
    assert used_vaults == {"kv-finance", "kv-storage", "kv-hr"} == set(WORLD["keyVaults"])
    # every Key Vault connection points at a vault that exists
    for connection in PV["azureKeyVaults"]:
        assert _vault_by_uri(connection["properties"]["baseUrl"]) is not None


def test_secret_versions_are_well_formed_and_the_used_ones_valid_at_now() -> None:
    for vault, body in WORLD["keyVaults"].items():
        for secret, versions in body["secrets"].items():
            assert len({v["version"] for v in versions}) == len(versions), (vault, secret)
            for v in versions:
                assert HEX32.match(v["version"])
                attrs = v["attributes"]
                assert _time(attrs["created"]) <= _time(attrs["updated"]) <= NOW
            newest = max(
                (v for v in versions if v["attributes"]["enabled"]),
                key=lambda v: _time(v["attributes"]["created"]),
            )
            exp = newest["attributes"].get("exp")
            assert exp is None or _time(exp) > NOW, (vault, secret)
            nbf = newest["attributes"].get("nbf")
            assert nbf is None or _time(nbf) <= NOW, (vault, secret)


def test_hr_secret_was_rotated_after_the_last_successful_run() -> None:
    runs = PV["runs"]["hr-sql/weekly"]
    last_success = max(_time(r["endTime"]) for r in runs if r["status"] == "Succeeded")
    versions = WORLD["keyVaults"]["kv-hr"]["secrets"]["hr-sql-password"]
    assert max(_time(v["attributes"]["created"]) for v in versions) > last_success


def test_integration_runtimes_referenced_exist_with_a_status() -> None:
    names = {ir["name"] for ir in PV["integrationRuntimes"]}
    for name, (_, _, _, ir) in SOURCES.items():
        if ir:
            assert ir in names and ir in PV["integrationRuntimeStatus"], name
    status = PV["integrationRuntimeStatus"]["shir-onprem"]["properties"]
    tp = status["typeProperties"]
    assert status["state"] == "Offline"
    assert [n["status"] for n in tp["nodes"]] == ["Offline"]
    assert tp["autoUpdate"] == "Off" and tp["version"] != tp["latestVersion"]
    assert (NOW - _time(tp["nodes"][0]["lastConnectTime"])).days >= 2


def test_role_assignments_reference_known_roles_principals_and_scopes() -> None:
    builtins = _builtin_role_ids()
    custom = {d["name"].lower() for d in WORLD["roleDefinitions"]}
    principals = {p["id"]: p for p in WORLD["principals"]}
    by_id = _resources_by_id()
    subscriptions = {f"/subscriptions/{s['subscriptionId']}" for s in WORLD["subscriptions"]}
    forms = set()
    for a in WORLD["roleAssignments"]:
        p = a["properties"]
        assert a["type"] == "Microsoft.Authorization/roleAssignments"
        assert a["id"] == p["scope"] + ROLE_ASSIGNMENT_PROVIDER + a["name"]
        assert _guid_of(p["roleDefinitionId"]) in builtins | custom, p["roleDefinitionId"]
        forms.add(p["roleDefinitionId"].startswith("/subscriptions/"))
        assert principals[p["principalId"]]["type"] == p["principalType"]
        assert p["condition"] is None and p["conditionVersion"] is None
        scope = p["scope"].lower()
        is_rg = scope.count("/") == 4 and "/resourcegroups/" in scope
        assert (
            scope in by_id
            or scope in {s.lower() for s in subscriptions}
            or (is_rg and any(r.startswith(scope + "/") for r in by_id))
        ), p["scope"]
    assert forms == {True, False}, "both roleDefinitionId forms occur, as in real Azure"
    for d in WORLD["roleDefinitions"]:
        assert d["id"].endswith("/roleDefinitions/" + d["name"])
        assert d["properties"]["type"] == "CustomRole"


def test_principals_and_group_nesting() -> None:
    principals = {p["id"]: p for p in WORLD["principals"]}
    for p in principals.values():
        for group in p["memberOf"]:
            assert principals[group]["type"] == "Group"
    msi = _account()["identity"]["principalId"]
    outer = next(p["id"] for p in principals.values() if p["displayName"] == "grp-data-platform-readers")
    inner = next(p["id"] for p in principals.values() if p["displayName"] == "grp-purview-scanners")
    assert principals[msi]["memberOf"] == [inner] and principals[inner]["memberOf"] == [outer]
    # marketing's only grant goes to the outer group, via the custom role, at the resource group
    grants = [
        a["properties"]
        for a in WORLD["roleAssignments"]
        if a["properties"]["scope"].endswith("/rg-marketing")
    ]
    assert [(g["principalId"], g["principalType"]) for g in grants] == [(outer, "Group")]
    assert _guid_of(grants[0]["roleDefinitionId"]) == WORLD["roleDefinitions"][0]["name"]
    assert any(p.get("userPrincipalName") == REQUESTER for p in principals.values())


def _account() -> dict[str, Any]:
    return next(r for r in WORLD["resources"] if r["type"] == "Microsoft.Purview/accounts")


def test_purview_account_and_its_managed_resources() -> None:
    account = _account()
    assert account["name"] == ACCOUNT and "/resourceGroups/rg-purview/" in account["id"]
    assert account["identity"]["type"] == "SystemAssigned"
    assert account["identity"]["tenantId"] == WORLD["tenantId"]
    by_id = _resources_by_id()
    managed = account["properties"]["managedResources"]
    assert managed["storageAccount"].lower() in by_id
    assert managed["eventHubNamespace"].lower() in by_id
    # the managed storage account's deny state is the only policy row
    assert [s["resourceId"] for s in WORLD["policyStates"]] == [managed["storageAccount"]]
    state = WORLD["policyStates"][0]
    assert (state["policyDefinitionAction"], state["complianceState"], state["isCompliant"]) == (
        "deny", "NonCompliant", False,
    )  # fmt: skip
    assert state["policyDefinitionName"] == "b2982f36-99f2-4db5-8eff-283140c09693"


def test_data_sources_point_at_existing_resources() -> None:
    by_id = _resources_by_id()
    subscriptions = {s["subscriptionId"] for s in WORLD["subscriptions"]}
    for ds in PV["dataSources"]:
        props = ds["properties"]
        assert props["subscriptionId"] in subscriptions
        if ds["kind"] == "AzureSubscription":
            assert props["resourceId"] == f"/subscriptions/{props['subscriptionId']}"
            continue
        resource = by_id[props["resourceId"].lower()]
        assert resource["name"] == props["resourceName"]
        if "endpoint" in props:
            assert props["endpoint"] in resource["properties"]["primaryEndpoints"].values()
        if "serverEndpoint" in props:
            assert props["serverEndpoint"] == resource["properties"]["fullyQualifiedDomainName"]
            # as on real ARM, the Entra admin is the server's child resource, not a property of its GET
            assert "administrators" not in resource["properties"]
            admin = by_id[f"{props['resourceId'].lower()}/administrators/activedirectory"]
            assert admin["properties"]["administratorType"] == "ActiveDirectory"


def test_guids_are_unique() -> None:
    ids: list[str] = [WORLD["tenantId"]]
    ids += [p["id"] for p in WORLD["principals"]]
    ids += [p["appId"] for p in WORLD["principals"] if p.get("appId")]
    ids += [s["subscriptionId"] for s in WORLD["subscriptions"]]
    ids += [d["name"] for d in WORLD["roleDefinitions"]]
    ids += [a["name"] for a in WORLD["roleAssignments"]]
    ids += [r["id"] for runs in PV["runs"].values() for r in runs]
    ids += [r["properties"]["databaseId"] for r in WORLD["resources"] if "databaseId" in r["properties"]]
    assert all(GUID.match(i) for i in ids)
    assert len(ids) == len(set(ids))
    versions = [v["version"] for b in WORLD["keyVaults"].values() for vs in b["secrets"].values() for v in vs]
    pinned = [s["secretVersion"] for c in PV["credentials"] for s in _secret_refs(c) if s["secretVersion"]]
    assert len(set(versions + pinned)) == len(versions) + len(pinned)


def test_the_sandbox_accepts_the_world() -> None:
    world_module = pytest.importorskip("sandbox.world")
    world = world_module.load_world(None)
    assert world.tenant_id == WORLD["tenantId"] and world.accounts == [ACCOUNT]


# --- decisions of the checks ---------------------------------------------------------------------------

# What each check decides for each source, with the requester oncall@contoso.com (Reader on both
# subscriptions). A cell is the set of its findings' statuses ("fail+pass": two findings); "-" = skipped;
# UPPER CASE marks the finding the source exists to show. Everything else passes or is skipped. The deny
# state on Purview's managed storage account is account-wide: azure-policy fails only where a source's
# runs were denied (ops-storage) and names the state in a passing finding elsewhere.
CHECK_IDS = [
    "scan-history", "source-access", "reader-role", "private-network", "key-vault-secret",
    "key-vault-access", "credential-rotation", "azure-policy", "integration-runtime",
]  # fmt: skip
DECISIONS = """
                      history  source  reader     network  secret  access  rotation  policy     runtime
sales-adls            fail     FAIL    pass       pass     -       -       -         pass       pass
finance-sql           fail     -       pass       pass     pass    FAIL    pass      pass       pass
archive-blob          fail     pass    pass       pass     FAIL    pass    pass      pass       pass
contoso-subscription  fail     -       FAIL+pass  FAIL     -       -       -         pass       pass
lake-private          fail     pass    pass       FAIL     -       -       -         pass       pass
hr-sql                fail     -       pass       pass     pass    pass    WARN      pass       FAIL+warn
ops-storage           fail     pass    pass       pass     -       -       -         FAIL+pass  pass
marketing-adls        pass     PASS    PASS       pass     -       -       -         pass       pass
healthy-blob          pass     pass    pass       pass     -       -       -         pass       pass
"""


def _parse_decisions(table: str) -> dict[str, dict[str, set[str]]]:
    rows = [line.split() for line in table.strip().splitlines()[1:]]
    return {
        row[0]: {
            check: {"skipped" if s == "-" else s.lower() for s in cell.split("+")}
            for check, cell in zip(CHECK_IDS, row[1:], strict=True)
        }
        for row in rows
    }


EXPECTED = _parse_decisions(DECISIONS)


def _load_check(check_id: str) -> Any | None:
    """The catalogue module's `CHECK`, or None while a colleague has not written it yet."""
    name = "checks.catalogue." + check_id.replace("-", "_")
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name in (name, "checks.catalogue", "checks"):
            return None
        raise
    return getattr(module, "CHECK", None)


def _fake_world() -> Any:
    fakes = pytest.importorskip("tests.fakes")
    return fakes.FakeWorld(WORLD, ACCOUNT)


async def _findings(source: str, check: Any) -> list[Any]:
    target = await _fake_world().target(source, now=NOW, requester_upn=REQUESTER)
    return list(await check.run(target))


@pytest.mark.parametrize(("source", "check_id"), [(s, c) for s, checks in EXPECTED.items() for c in checks])
async def test_check_decides_as_intended(source: str, check_id: str) -> None:
    check = _load_check(check_id)
    if check is None:
        pytest.skip(f"checks/catalogue/{check_id.replace('-', '_')}.py does not exist yet")
    found = await _findings(source, check)
    assert all(f.check == check_id for f in found)
    statuses = {f.status.value for f in found}
    assert statuses == EXPECTED[source][check_id], [(f.status.value, f.title) for f in found]


async def test_marketing_access_comes_through_nested_groups_and_the_custom_role() -> None:
    check = _load_check("source-access")
    if check is None:
        pytest.skip("source-access does not exist yet")
    (finding,) = await _findings("marketing-adls", check)
    assert finding.status.value == "pass"
    via = finding.evidence["via"]
    assert [(v["roleName"], v["principalType"]) for v in via] == [("Contoso Data Scanner", "Group")]
    assert via[0]["scope"].endswith("/resourceGroups/rg-marketing")


async def test_managed_storage_policy_is_named_for_every_source_and_fails_where_it_denied() -> None:
    check = _load_check("azure-policy")
    if check is None:
        pytest.skip("azure-policy does not exist yet")
    managed = _account()["properties"]["managedResources"]["storageAccount"]
    for source in SOURCES:
        named = [f for f in await _findings(source, check) if f.evidence["resourceId"] == managed]
        assert len(named) == 1 and named[0].evidence["states"], source
        assert named[0].status.value == ("fail" if source == "ops-storage" else "pass"), source


async def test_healthy_blob_passes_every_check() -> None:
    for check_id in CHECK_IDS:
        check = _load_check(check_id)
        if check is None:
            continue
        for f in await _findings("healthy-blob", check):
            assert f.status.value in ("pass", "skipped"), (check_id, f.title)


# --- a readable table of the decisions: python -m tests.test_sample_world --------------------------------


async def _print_decisions() -> None:
    for source in SOURCES:
        print(f"== {source}")
        for check_id in CHECK_IDS:
            check = _load_check(check_id)
            if check is None:
                print(f"   {check_id:20} (missing)")
                continue
            for f in await _findings(source, check):
                print(f"   {check_id:20} {f.status.value:8} {f.title}")


if __name__ == "__main__":
    asyncio.run(_print_decisions())
