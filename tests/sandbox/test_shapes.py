"""Shape check against the published Azure examples in ../shared/reference/examples.

For each example that matches something the sandbox builds itself (envelopes, role assignments and
definitions, Key Vault items, policy rows) the sandbox's object has at least the example's keys, at the top
level and under `properties`/`attributes` where the example has them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox.conftest import ARM, KEYVAULT, MANAGED_STORAGE, PURVIEW, STORAGE, SUB, Caller

EXAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "examples"
pytestmark = pytest.mark.skipif(
    not EXAMPLES.is_dir(),
    reason=f"shared reference examples not found at {EXAMPLES} (clone shared/ beside the repo)",
)

PV = "/purview/contoso-pv/scan"
NESTED = ("properties", "attributes")
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


def first(body: Any) -> Any:
    return body["value"][0]


def whole(body: Any) -> Any:
    return body


API_VERSION = {ARM: "2022-04-01", KEYVAULT: "7.5", PURVIEW: "2023-09-01"}
AUTHZ = f"/subscriptions/{SUB}/providers/Microsoft.Authorization"
POLICY = "/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults"
RUNS = f"{PV}/datasources/sales-adls/scans/weekly/runs"

# (example file, which object of both bodies to compare, method, path, token scope)
CASES: list[tuple[str, Any, str, str, str]] = [
    ("arm/RoleAssignments_ListForScope.json", first, "GET", f"{AUTHZ}/roleAssignments", ARM),
    ("arm/GetRoleDefinitionById.json", whole, "GET", f"{AUTHZ}/roleDefinitions/{READER}", ARM),
    ("arm/PolicyStates_QueryResourceScope.json", whole, "POST", MANAGED_STORAGE + POLICY, ARM),
    ("keyvault/GetSecretVersions.json", whole, "GET", "/kv/kv-sales/secrets/sql-password/versions", KEYVAULT),
    ("keyvault/GetSecretVersions.json", first, "GET", "/kv/kv-sales/secrets/sql-password/versions", KEYVAULT),
    ("keyvault/GetSecrets.json", first, "GET", "/kv/kv-sales/secrets", KEYVAULT),
    ("keyvault/GetSecret.json", whole, "GET", "/kv/kv-sales/secrets/sql-password", KEYVAULT),
    ("purview/Credential_ListAll.json", whole, "GET", f"{PV}/credentials", PURVIEW),
    ("purview/KeyVaultConnections_List.json", whole, "GET", f"{PV}/azureKeyVaults", PURVIEW),
    ("purview/KeyVaultConnections_Get.json", whole, "GET", f"{PV}/azureKeyVaults/kv-sales-conn", PURVIEW),
    ("purview/Scans_ListByDataSource.json", whole, "GET", f"{PV}/datasources/sales-adls/scans", PURVIEW),
    ("purview/ScanResult_ListScanHistory.json", whole, "GET", RUNS, PURVIEW),
    ("purview/ScanResult_GetScanStatus.json", whole, "GET", f"{RUNS}/run-1", PURVIEW),
    ("purview/IntegrationRuntimes_ListByAccount.json", whole, "GET", f"{PV}/integrationruntimes", PURVIEW),
    (
        "purview/IntegrationRuntimes_Status.json",
        whole,
        "GET",
        f"{PV}/integrationruntimes/shir-01/status",
        PURVIEW,
    ),
    ("purview/DataSources_ListAll.json", whole, "GET", f"{PV}/datasources", PURVIEW),
]


@pytest.mark.parametrize(
    ("example", "pick", "method", "path", "scope"), CASES, ids=[f"{c[0]}:{c[1].__name__}" for c in CASES]
)
async def test_keys_cover_the_example(
    call: Caller, example: str, pick: Any, method: str, path: str, scope: str
) -> None:
    expected = pick(json.loads((EXAMPLES / example).read_text(encoding="utf-8")))
    query = {"api-version": API_VERSION[scope]}
    if example.endswith("GetSecretVersions.json") and pick is whole:
        query["maxresults"] = "1"  # so a nextLink is present, as in the example
    status, body, _ = await call(method, path, scope=scope, params=query)
    assert status == 200, body
    ours = pick(body)
    assert set(ours) >= set(expected), f"missing top-level keys {set(expected) - set(ours)}"
    for key in NESTED:
        if isinstance(expected.get(key), dict) and isinstance(ours.get(key), dict):
            missing = set(expected[key]) - set(ours[key])
            assert not missing, f"missing {key} keys {missing}"


async def test_arm_resource_keeps_world_document(call: Caller) -> None:
    """Resources are served as the world wrote them: the world's own keys all come back."""
    _, body, _ = await call("GET", STORAGE, scope=ARM, params={"api-version": "2023-05-01"})
    assert {"id", "name", "type", "location", "kind", "properties"} <= set(body)
