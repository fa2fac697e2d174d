"""`handlers.watch.alerts`: Microsoft's own payloads, and Purview-shaped variants built from them."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from handlers.watch.alerts import AlertPayloadError, AlertRun, inspect_alert, parse_alert
from tests.watch.alert_payloads import (
    PURVIEW_ID,
    RUN_ID,
    dims,
    purview_search_results,
    purview_v2,
    sample,
    scan_status_event,
)

# --- Microsoft's samples as they are -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "log_search_alert_LogAlertsV2_workspace_testaction.json",
        "log_search_alert_common_schema_LogAlertsV2.json",
    ],
)
def test_microsofts_log_alert_samples_name_no_scan(name: str) -> None:
    """They alert on Heartbeat for a VM/workspace (dimensions Computer, ResourceId): well-formed, nothing
    to post, and the reason says how to split the rule."""
    parsed = inspect_alert(sample(name))
    assert parsed.runs == []
    assert parsed.ignored_reason is not None
    assert "names no scan" in parsed.ignored_reason
    assert "signal Log" in parsed.ignored_reason
    assert "DataSourceName" in parsed.ignored_reason


def test_microsofts_metric_sample_is_a_resolution() -> None:
    parsed = inspect_alert(sample("common_schema_sample_metric.json"))
    assert parsed.runs == []
    assert parsed.ignored_reason == "alert 'WCUS-R2-Gen2' resolved: nothing to post"


def test_a_fired_metric_alert_names_no_scan() -> None:
    payload = copy.deepcopy(sample("common_schema_sample_metric.json"))
    payload["data"]["essentials"]["monitorCondition"] = "Fired"
    parsed = inspect_alert(payload)
    assert parsed.runs == []
    assert parsed.ignored_reason is not None
    assert "'WCUS-R2-Gen2' (signal Metric) names no scan" in parsed.ignored_reason


# --- Log Alerts V2: dimensions ----------------------------------------------------------------------------


def test_v2_dimensions_give_one_run() -> None:
    payload = purview_v2(
        dims(
            DataSourceName="sales-adls",
            ScanName="weekly",
            ScanResultId=RUN_ID,
            _ResourceId=PURVIEW_ID.lower(),
        )
    )
    assert parse_alert(payload) == [AlertRun("contoso-pv", "sales-adls", "weekly", RUN_ID, None, None)]


def test_v2_dimension_names_are_case_insensitive_and_carry_status_and_error() -> None:
    payload = purview_v2(
        dims(
            datasourcename="hr-sql",
            SCANNAME="nightly",
            scanResultID="r-2",
            resulttype="Failed",
            ErrorDetails="Login failed for user '<token-identified principal>'",
            _RESOURCEID=PURVIEW_ID.upper(),
        )
    )
    [run] = parse_alert(payload)
    assert run == AlertRun(
        "contoso-pv",
        "hr-sql",
        "nightly",
        "r-2",
        "Failed",
        "Login failed for user '<token-identified principal>'",
    )


def test_v2_one_run_per_allof_entry_duplicates_once() -> None:
    first = dims(DataSourceName="sales-adls", ScanName="weekly", ScanResultId="r-1", _ResourceId=PURVIEW_ID)
    second = dims(DataSourceName="hr-sql", ScanName="nightly", ScanResultId="r-2", _ResourceId=PURVIEW_ID)
    runs = parse_alert(purview_v2(first, second, first))
    assert [(r.source, r.scan, r.run_id) for r in runs] == [
        ("sales-adls", "weekly", "r-1"),
        ("hr-sql", "nightly", "r-2"),
    ]


def test_v2_account_from_the_alert_target_when_no_resource_id_dimension() -> None:
    """A rule scoped to the Purview account (or split by `resource id _ResourceId`) targets the account."""
    payload = purview_v2(dims(DataSourceName="sales-adls", ScanName="weekly", ScanResultId="r-1"))
    assert parse_alert(payload)[0].account is None  # the workspace is no Purview account
    payload["data"]["essentials"]["alertTargetIDs"] = [PURVIEW_ID]
    assert parse_alert(payload)[0].account == "contoso-pv"


def test_v2_empty_value_means_absent() -> None:
    payload = purview_v2(
        dims(
            DataSourceName="sales-adls",
            ScanName="weekly",
            ScanResultId="empty_value",
            ErrorDetails="empty_value",
        )
    )
    [run] = parse_alert(payload)
    assert run.run_id is None and run.error is None


def test_v2_entries_without_the_scan_are_skipped_and_all_missing_is_ignored() -> None:
    good = dims(DataSourceName="sales-adls", ScanName="weekly")
    no_scan = dims(DataSourceName="sales-adls", ScanName="empty_value")
    assert [r.scan for r in parse_alert(purview_v2(no_scan, good))] == ["weekly"]
    parsed = inspect_alert(purview_v2(no_scan))
    assert parsed.runs == [] and "'purview-scan-failed' (signal Log) names no scan" in (
        parsed.ignored_reason or ""
    )


def test_resolved_alerts_post_nothing() -> None:
    payload = purview_v2(dims(DataSourceName="sales-adls", ScanName="weekly"))
    payload["data"]["essentials"]["monitorCondition"] = "Resolved"
    parsed = inspect_alert(payload)
    assert (
        parsed.runs == [] and parsed.ignored_reason == "alert 'purview-scan-failed' resolved: nothing to post"
    )


# --- the older log alerts: SearchResults -----------------------------------------------------------------


def test_search_results_give_one_run_per_row() -> None:
    rows: list[list[Any]] = [
        [
            "2026-11-28T07:14:09Z",
            PURVIEW_ID,
            "sales-adls",
            "weekly",
            "r-1",
            "403 AuthorizationPermissionMismatch",
        ],
        ["2026-11-28T07:14:10Z", PURVIEW_ID.lower(), "hr-sql", "nightly", "r-2", "empty_value"],
        ["2026-11-28T07:14:11Z", None, "crm-sql", "daily", None, None],
    ]
    assert parse_alert(purview_search_results(rows)) == [
        AlertRun("contoso-pv", "sales-adls", "weekly", "r-1", None, "403 AuthorizationPermissionMismatch"),
        AlertRun("contoso-pv", "hr-sql", "nightly", "r-2", None, None),
        AlertRun(None, "crm-sql", "daily", None, None, None),
    ]


def test_search_results_columns_by_name_in_any_order_and_case() -> None:
    payload = purview_search_results([])
    table = payload["data"]["alertContext"]["SearchResults"]["tables"][0]
    table["columns"] = [{"name": n, "type": "string"} for n in ("resulttype", "SCANNAME", "datasourcename")]
    table["rows"] = [["Failed", "weekly", "sales-adls"]]
    assert parse_alert(payload) == [AlertRun(None, "sales-adls", "weekly", None, "Failed", None)]


def test_search_results_dropped_for_size_is_ignored() -> None:
    """Payloads over 256 KB lose SearchResults: nothing to post, and a reason."""
    payload = purview_search_results([])
    del payload["data"]["alertContext"]["SearchResults"]
    parsed = inspect_alert(payload)
    assert parsed.runs == [] and "names no scan" in (parsed.ignored_reason or "")


# --- raw ScanStatusLogEvent records ------------------------------------------------------------------------


def test_a_raw_failed_event() -> None:
    """Upper-cased resource id (as Azure exports it) → the account lower-cased; errorDetails empty →
    resultDescription holds the message."""
    assert parse_alert(scan_status_event()) == [
        AlertRun(
            "contoso-pv",
            "AzureDataExplorer-swD",
            "Scan-Kzw-shoebox-test",
            RUN_ID,
            "Failed",
            "Failed to access the data source: 403 AuthorizationPermissionMismatch",
        )
    ]


def test_raw_events_as_a_list_and_as_a_records_envelope() -> None:
    second = scan_status_event(resultType="Succeeded", resultDescription="empty_value")
    second["properties"] = {**second["properties"], "scanName": "other", "errorDetails": "details"}
    other_category = {"category": "DataSensitivityLogEvent", "properties": {"assetName": "x"}}
    for body in ([scan_status_event(), second, other_category], {"records": [scan_status_event(), second]}):
        runs = parse_alert(body)
        assert [(r.scan, r.status, r.error) for r in runs] == [
            (
                "Scan-Kzw-shoebox-test",
                "Failed",
                "Failed to access the data source: 403 AuthorizationPermissionMismatch",
            ),
            ("other", "Succeeded", "details"),
        ]


def test_records_of_other_categories_are_ignored() -> None:
    parsed = inspect_alert({"records": [{"category": "Security", "properties": {}}]})
    assert (
        parsed.runs == []
        and parsed.ignored_reason == "none of 1 record(s) is a ScanStatusLogEvent naming a scan"
    )
    assert inspect_alert([]).ignored_reason == "no records"


# --- shapes that are not alerts, and malformed bodies ---------------------------------------------------


def test_unknown_objects_are_ignored_not_errors() -> None:
    assert "enable the common alert schema" in (inspect_alert({"hello": "world"}).ignored_reason or "")
    assert "is not the common alert schema" in (
        inspect_alert({"schemaId": "Microsoft.Insights/activityLogs"}).ignored_reason or ""
    )


def _v2_with(path: list[str | int], value: object) -> Callable[[], object]:
    """A Purview V2 alert with one field replaced (built in the test: the samples may be absent)."""

    def build() -> object:
        payload = purview_v2(dims(DataSourceName="sales-adls", ScanName="weekly"))
        target: Any = payload
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return payload

    return build


def _just(value: object) -> Callable[[], object]:
    return lambda: value


ALLOF0: list[str | int] = ["data", "alertContext", "condition", "allOf", 0]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_just(42), "expected a JSON object or list, got int"),
        (_just("alert"), "got a string"),
        (_just(None), "got null"),
        (_just([1]), r"the list\[0\]: expected an object"),
        (_just({"records": ["x"]}), r"records\[0\]: expected an object"),
        (_just({"category": "ScanStatusLogEvent", "properties": "x"}), "properties: expected an object"),
        (_just({"category": {"a": 1}}), "category: expected a string"),
        (_just({"schemaId": "azureMonitorCommonAlertSchema"}), "data: expected an object, got null"),
        (
            _just({"schemaId": "azureMonitorCommonAlertSchema", "data": []}),
            "data: expected an object, got a list",
        ),
        (_v2_with(["data", "essentials"], "x"), "data.essentials: expected an object"),
        (_v2_with(["data", "alertContext"], 3), "data.alertContext: expected an object"),
        (_v2_with(["data", "essentials", "alertTargetIDs"], "id"), "alertTargetIDs: expected a list"),
        (
            _v2_with(["data", "essentials", "monitorCondition"], ["Fired"]),
            "monitorCondition: expected a string",
        ),
        (_v2_with(["data", "alertContext", "condition", "allOf"], {}), "allOf: expected a list"),
        (_v2_with([*ALLOF0, "dimensions"], "x"), r"allOf\[0\].dimensions: expected a list"),
        (_v2_with([*ALLOF0, "dimensions"], [1]), r"dimensions\[0\]: expected an object"),
        (_v2_with([*ALLOF0, "dimensions"], [{"name": "ScanName", "value": {}}]), r"dimensions\[0\].value"),
    ],
)
def test_malformed_bodies_raise(make: Callable[[], object], message: str) -> None:
    payload = make()
    with pytest.raises(AlertPayloadError, match=message):
        parse_alert(payload)


def test_malformed_search_results_raise() -> None:
    payload = purview_search_results([])
    payload["data"]["alertContext"]["SearchResults"]["tables"][0]["rows"] = "x"
    with pytest.raises(AlertPayloadError, match=r"tables\[0\].rows: expected a list"):
        parse_alert(payload)
    payload["data"]["alertContext"]["SearchResults"]["tables"][0]["rows"] = [["a", {"b": 1}]]
    with pytest.raises(AlertPayloadError, match=r"rows\[0\]\[1\]"):
        parse_alert(payload)
