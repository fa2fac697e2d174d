"""Large generated worlds for the watcher's process tests and the sweep benchmark.

`generated_world(sources, scans_per_source, failing)` returns a world in the format of `sample.yaml`: one
Purview account whose storage sources each have MSI scans with a short run history (newest first). The
`failing` scans end in a Failed run whose cause is real in the world (so a diagnosis finds it): either
Purview's identity lacks Storage Blob Data Reader on that source's storage account (403
`AuthorizationPermissionMismatch`), or the account's firewall denies public access with no trusted-service
bypass (403 `AuthorizationFailure`). Every cause names its own storage account, so failures on different
sources are distinct root causes, not a storm.

Run times are relative to `now` (default: the wall clock at generation), because the watcher compares run
end times with its own clock and a lookback window. The world says its `now`, so `load_world` rebases it
like any world (to the wall clock by default): a file generated last month still reads as of today.

    python -m sandbox.generate SOURCES SCANS_PER_SOURCE [--failing N] [--seed S] > world.yaml
"""

from __future__ import annotations

import argparse
import random
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

Json = dict[str, Any]

ACCOUNT = "contoso-gen-pv"
TENANT = "4f1c2b6a-5d0e-4c4b-9a3e-6f7d8e9a0b1c"
SUBSCRIPTION = "0b6e4d2c-8a1f-4e3b-9c5d-7a2b1c0d9e8f"
PURVIEW_MSI = "6a0c5e1d-2b3f-4a9e-8d7c-1e2f3a4b5c6d"
BOT_SP = "9d8c7b6a-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
PAGE_SIZE = 100
RUNS_PER_SCAN = 3
SOURCES_PER_GROUP = 50
CAUSES = ("missing-data-role", "firewall")

_SUB = f"/subscriptions/{SUBSCRIPTION}"
_PURVIEW_RG = f"{_SUB}/resourceGroups/rg-purview"
_MANAGED_RG = f"{_SUB}/resourceGroups/managed-rg-{ACCOUNT}"
_MANAGED_STORAGE = f"{_MANAGED_RG}/providers/Microsoft.Storage/storageAccounts/scaneastusgen01"


@dataclass(frozen=True)
class _Source:
    index: int
    name: str
    kind: str  # AdlsGen2 | AzureStorage
    storage: str
    group: str
    cause: str | None  # None: healthy; else one of CAUSES

    @property
    def storage_id(self) -> str:
        group = f"{_SUB}/resourceGroups/{self.group}"
        return f"{group}/providers/Microsoft.Storage/storageAccounts/{self.storage}"

    @property
    def endpoint(self) -> str:
        service = "dfs" if self.kind == "AdlsGen2" else "blob"
        return f"https://{self.storage}.{service}.core.windows.net/"


def generated_world(
    sources: int,
    scans_per_source: int,
    failing: int = 0,
    *,
    seed: int = 0,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A world with `sources` × `scans_per_source` MSI scans, `failing` of them with a newest Failed run.

    Failing scans are spread over distinct sources first (one cause per source, alternating between a
    missing data role and a firewall); only when `failing` exceeds `sources` does a source get a second
    failing scan (same cause: a small storm). Deterministic for a given `seed` and `now`.
    """
    if sources < 1 or scans_per_source < 1:
        raise ValueError("sources and scans_per_source must be positive")
    if not 0 <= failing <= sources * scans_per_source:
        raise ValueError(f"failing must be between 0 and {sources * scans_per_source}")
    rng = random.Random(seed)
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    failing_sources = sorted(rng.sample(range(sources), min(failing, sources)))
    cause_of = {s: CAUSES[n % len(CAUSES)] for n, s in enumerate(failing_sources)}
    failing_scans: dict[int, int] = {s: 1 for s in failing_sources}  # source index → failing scan count
    extra = failing - len(failing_sources)
    for s in failing_sources:
        if extra <= 0:
            break
        more = min(extra, scans_per_source - 1)
        failing_scans[s] += more
        extra -= more
    width = max(4, len(str(sources - 1)))
    items = [
        _Source(
            index=i,
            name=f"src-{i:0{width}d}",
            kind="AdlsGen2" if i % 2 == 0 else "AzureStorage",
            storage=f"stgen{seed % 1000:03d}{i:0{width}d}"[:24],
            group=f"rg-data-{i // SOURCES_PER_GROUP:03d}",
            cause=cause_of.get(i),
        )
        for i in range(sources)
    ]
    data_sources: list[Json] = []
    scans: dict[str, list[Json]] = {}
    runs: dict[str, list[Json]] = {}
    for src in items:
        data_sources.append(_data_source(src))
        scans[src.name] = [_scan(src, j) for j in range(scans_per_source)]
        for j in range(scans_per_source):
            fails = src.cause is not None and j < failing_scans.get(src.index, 0)
            runs[f"{src.name}/scan-{j}"] = _runs(rng, src, j, moment, fails)
    return {
        "tenantId": TENANT,
        "now": _iso(moment),
        "pageSize": PAGE_SIZE,
        "principals": [
            {"id": PURVIEW_MSI, "type": "ServicePrincipal", "displayName": ACCOUNT, "memberOf": []},
            {"id": BOT_SP, "type": "ServicePrincipal", "displayName": "purview-bot", "memberOf": []},
        ],
        "subscriptions": [{"subscriptionId": SUBSCRIPTION, "displayName": "Contoso Generated Data"}],
        "resources": [_purview_account(), _managed_storage(), *(_storage(s) for s in items)],
        "roleDefinitions": [],
        "roleAssignments": [
            _assignment(_SUB, READER, PURVIEW_MSI, rng),
            _assignment(_SUB, READER, BOT_SP, rng),
            *(
                _assignment(s.storage_id, BLOB_DATA_READER, PURVIEW_MSI, rng)
                for s in items
                if s.cause != "missing-data-role"
            ),
        ],
        "policyStates": [],
        "keyVaults": {},
        "purview": {
            ACCOUNT: {
                "dataSources": data_sources,
                "scans": scans,
                "runs": runs,
                "credentials": [],
                "azureKeyVaults": [],
                "integrationRuntimes": [],
                "integrationRuntimeStatus": {},
                "managedPrivateEndpoints": {},
            }
        },
        "faults": [],
    }


def failing_runs(world: dict[str, Any]) -> dict[str, str]:
    """The newest Failed run of each failing scan: run id → "SOURCE/SCAN" (what tests assert against)."""
    out: dict[str, str] = {}
    for account in world["purview"].values():
        for key, history in account["runs"].items():
            if history and history[0]["status"] == "Failed":
                out[str(history[0]["id"])] = key
    return out


# --- documents ------------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _purview_account() -> Json:
    return {
        "id": f"{_PURVIEW_RG}/providers/Microsoft.Purview/accounts/{ACCOUNT}",
        "name": ACCOUNT,
        "type": "Microsoft.Purview/accounts",
        "location": "eastus",
        "sku": {"name": "Standard", "capacity": 1},
        "identity": {"type": "SystemAssigned", "principalId": PURVIEW_MSI, "tenantId": TENANT},
        "properties": {
            "friendlyName": ACCOUNT,
            "provisioningState": "Succeeded",
            "endpoints": {
                "catalog": f"https://{ACCOUNT}.catalog.purview.azure.com",
                "scan": f"https://{ACCOUNT}.scan.purview.azure.com",
                "guardian": f"https://{ACCOUNT}.guardian.purview.azure.com",
            },
            "managedResourceGroupName": f"managed-rg-{ACCOUNT}",
            "managedResources": {"resourceGroup": _MANAGED_RG, "storageAccount": _MANAGED_STORAGE},
            "publicNetworkAccess": "Enabled",
            "managedResourcesPublicNetworkAccess": "Enabled",
        },
    }


def _network(deny: bool) -> Json:
    return {
        "bypass": "None" if deny else "AzureServices",
        "defaultAction": "Deny" if deny else "Allow",
        "ipRules": [],
        "virtualNetworkRules": [],
        "resourceAccessRules": [],
    }


def _storage_doc(rid: str, name: str, *, hns: bool, deny: bool) -> Json:
    return {
        "id": rid,
        "name": name,
        "type": "Microsoft.Storage/storageAccounts",
        "kind": "StorageV2",
        "location": "eastus",
        "sku": {"name": "Standard_LRS", "tier": "Standard"},
        "tags": {},
        "properties": {
            "provisioningState": "Succeeded",
            "primaryLocation": "eastus",
            "statusOfPrimary": "available",
            "publicNetworkAccess": "Disabled" if deny else "Enabled",
            "allowSharedKeyAccess": False,
            "allowBlobPublicAccess": False,
            "isHnsEnabled": hns,
            "minimumTlsVersion": "TLS1_2",
            "supportsHttpsTrafficOnly": True,
            "networkAcls": _network(deny),
            "primaryEndpoints": {
                "blob": f"https://{name}.blob.core.windows.net/",
                "dfs": f"https://{name}.dfs.core.windows.net/",
            },
        },
    }


def _managed_storage() -> Json:
    return _storage_doc(_MANAGED_STORAGE, "scaneastusgen01", hns=False, deny=False)


def _storage(src: _Source) -> Json:
    return _storage_doc(src.storage_id, src.storage, hns=src.kind == "AdlsGen2", deny=src.cause == "firewall")


def _assignment(scope: str, role: str, principal: str, rng: random.Random) -> Json:
    name = _uuid(rng)
    return {
        "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
        "name": name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "scope": scope,
            "roleDefinitionId": f"{_SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}",
            "principalId": principal,
            "principalType": "ServicePrincipal",
        },
    }


def _collection(src: _Source) -> Json:
    return {"referenceName": f"col-{src.index // SOURCES_PER_GROUP:03d}", "type": "CollectionReference"}


def _data_source(src: _Source) -> Json:
    return {
        "kind": src.kind,
        "id": f"datasources/{src.name}",
        "name": src.name,
        "creationType": "Manual",
        "properties": {
            "endpoint": src.endpoint,
            "subscriptionId": SUBSCRIPTION,
            "resourceGroup": src.group,
            "resourceName": src.storage,
            "resourceId": src.storage_id,
            "location": "eastus",
            "dataUseGovernance": "Disabled",
            "parentCollection": None,
            "collection": _collection(src),
        },
    }


def _scan(src: _Source, j: int) -> Json:
    return {
        "name": f"scan-{j}",
        "id": f"datasources/{src.name}/scans/scan-{j}",
        "dataSourceName": src.name,
        "kind": f"{src.kind}Msi",
        "creationType": "Manual",
        "properties": {
            "scanRulesetName": src.kind,
            "scanRulesetType": "System",
            "connectedVia": None,
            "workers": None,
            "collection": _collection(src),
        },
    }


def _error_text(src: _Source, request_id: str, at: datetime) -> tuple[str, str]:
    """The run's error code and message, worded as Purview wraps the storage service's 403."""
    stamp = _iso(at)
    if src.cause == "firewall":
        detail = "This request is not authorized to perform this operation."
        code = "AuthorizationFailure"
    else:
        detail = "This request is not authorized to perform this operation using this permission."
        code = "AuthorizationPermissionMismatch"
    message = (
        f"Failed to access the data source '{src.endpoint}' with the managed identity of Microsoft Purview "
        f"account '{ACCOUNT}'. {detail} RequestId:{request_id} Time:{stamp} Status: 403 ({detail}) "
        f"ErrorCode: {code}"
    )
    return code, message


def _runs(rng: random.Random, src: _Source, j: int, now: datetime, fails: bool) -> list[Json]:
    """`RUNS_PER_SCAN` runs newest first, a day apart, the newest ending within the last 6 hours."""
    newest_end = now - timedelta(minutes=rng.randint(5, 360))
    out: list[Json] = []
    for k in range(RUNS_PER_SCAN):
        end = newest_end - timedelta(days=k)
        failed = fails and k == 0
        start = end - timedelta(seconds=rng.randint(40, 150) if failed else rng.randint(300, 2400))
        run_id = _uuid(rng)
        run: Json = {
            "id": run_id,
            "parentId": None,
            "ingestionJobId": run_id,
            "resourceId": src.storage_id,
            "status": "Failed" if failed else "Succeeded",
            "startTime": _iso(start),
            "endTime": _iso(end),
            "scanRulesetVersion": 1,
            "scanRulesetType": "System",
            "scanLevelType": "Full" if k == RUNS_PER_SCAN - 1 else "Incremental",
            "runType": "Scheduled",
            "dataSourceType": src.kind,
            "errorMessage": None,
            "error": None,
            "diagnostics": {"notifications": [], "exceptionCountMap": {}},
        }
        if failed:
            code, message = _error_text(src, _uuid(rng), start + timedelta(seconds=20))
            run["errorMessage"] = message
            run["error"] = {"code": code, "message": message, "target": None, "details": []}
        out.append(run)
    return out


class _NoAliases(yaml.SafeDumper):
    """Write every document in full: a world file is read by people, not only by the loader."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.generate", description=__doc__.split("\n")[0])
    parser.add_argument("sources", type=int)
    parser.add_argument("scans_per_source", type=int)
    parser.add_argument("--failing", type=int, default=0, help="scans whose newest run failed")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        world = generated_world(args.sources, args.scans_per_source, args.failing, seed=args.seed)
    except ValueError as exc:
        print(f"sandbox.generate: {exc}", file=sys.stderr)
        return 2
    yaml.dump(world, sys.stdout, Dumper=_NoAliases, sort_keys=False, width=200)
    return 0


if __name__ == "__main__":
    sys.exit(main())
