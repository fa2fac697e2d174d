"""Microsoft's sample alert payloads (from the shared reference) and Purview-shaped variants of them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "examples" / "monitor"

SUB = "/subscriptions/11111111-1111-1111-1111-111111111111"
PURVIEW_ID = f"{SUB}/resourceGroups/rg-data/providers/Microsoft.Purview/accounts/contoso-pv"
WORKSPACE_ID = f"{SUB}/resourcegroups/rg-ops/providers/microsoft.operationalinsights/workspaces/ops-logs"
RUN_ID = "0dc51a72-4156-40e3-8539-b5728394561f"
QUERY = (
    'PurviewScanStatusLogs | where ResultType == "Failed" '
    "| project TimeGenerated, _ResourceId, DataSourceName, ScanName, ScanResultId, ErrorDetails"
)


def sample(name: str) -> dict[str, Any]:
    """One of Microsoft's payloads; the test is skipped when the shared reference is not checked out."""
    path = EXAMPLES / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def dims(**values: str) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in values.items()]


def purview_v2(*dimension_sets: list[dict[str, str]]) -> dict[str, Any]:
    """Microsoft's Log Alerts V2 sample, as a rule on PurviewScanStatusLogs split by the scan's columns."""
    payload = copy.deepcopy(sample("log_search_alert_LogAlertsV2_workspace_testaction.json"))
    payload["data"]["essentials"]["alertRule"] = "purview-scan-failed"
    payload["data"]["essentials"]["alertTargetIDs"] = [WORKSPACE_ID]
    payload["data"]["essentials"]["configurationItems"] = ["ops-logs"]
    template = payload["data"]["alertContext"]["condition"]["allOf"][0]
    entries = []
    for dimensions in dimension_sets:
        entry = copy.deepcopy(template)
        entry["searchQuery"] = QUERY
        entry["dimensions"] = dimensions
        entries.append(entry)
    payload["data"]["alertContext"]["condition"]["allOf"] = entries
    return payload


def purview_search_results(rows: list[list[Any]]) -> dict[str, Any]:
    """The older log-alert context (PascalCase, results embedded), on the same common-schema envelope."""
    payload = copy.deepcopy(sample("log_search_alert_common_schema_LogAlertsV2.json"))
    payload["data"]["essentials"]["monitoringService"] = "Log Analytics"
    payload["data"]["essentials"]["alertTargetIDs"] = [WORKSPACE_ID]
    columns = ["TimeGenerated", "_ResourceId", "DataSourceName", "ScanName", "ScanResultId", "ErrorDetails"]
    payload["data"]["alertContext"] = {
        "SearchQuery": QUERY,
        "SearchIntervalStartTimeUtc": "2026-11-28T07:00:00Z",
        "SearchIntervalEndtimeUtc": "2026-11-28T07:15:00Z",
        "ResultCount": len(rows),
        "LinkToSearchResults": "https://portal.azure.com#@tenant/blade/…",
        "SearchResults": {
            "tables": [
                {
                    "name": "PrimaryResult",
                    "columns": [
                        {"name": c, "type": "datetime" if c == "TimeGenerated" else "string"} for c in columns
                    ],
                    "rows": rows,
                }
            ],
            "dataSources": [{"resourceId": WORKSPACE_ID, "tables": ["PurviewScanStatusLogs"]}],
        },
        "IncludedSearchResults": "True",
        "AlertType": "Number of results",
        "Threshold": 0,
        "Operator": "Greater Than",
    }
    return payload


def scan_status_event(**overrides: Any) -> dict[str, Any]:
    """The raw ScanStatusLogEvent of Purview's monitoring doc (as an Event Hub forwarder would post it)."""
    event: dict[str, Any] = {
        "time": "2020-11-24T20:25:13.022860553Z",
        "properties": {
            "dataSourceName": "AzureDataExplorer-swD",
            "dataSourceType": "AzureDataExplorer",
            "scanName": "Scan-Kzw-shoebox-test",
            "assetsDiscovered": "0",
            "assetsClassified": "0",
            "scanQueueTimeInSeconds": "0",
            "scanTotalRunTimeInSeconds": "0",
            "runType": "Manual",
            "errorDetails": "empty_value",
            "scanResultId": RUN_ID,
        },
        "resourceId": f"{SUB.upper()}/RESOURCEGROUPS/RG-DATA/PROVIDERS/MICROSOFT.PURVIEW/ACCOUNTS/CONTOSO-PV",
        "category": "ScanStatusLogEvent",
        "operationName": "TriggeredScanRun",
        "resultType": "Failed",
        "resultSignature": "empty_value",
        "resultDescription": "Failed to access the data source: 403 AuthorizationPermissionMismatch",
        "durationMs": 0,
        "level": "Error",
        "location": "eastus",
    }
    event.update(overrides)
    return event
