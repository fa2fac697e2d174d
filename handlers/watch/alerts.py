"""Scan runs named by an Azure Monitor alert (or a raw `ScanStatusLogEvent`), parsed without I/O.

Action groups post what the alert rule put in the payload, nothing more: Log Alerts V2 never embed rows,
so the scan's identity travels in the split-by dimensions (`DataSourceName`, `ScanName`, `ScanResultId`,
`_ResourceId`); the older log alerts embed `SearchResults` tables; an Event Hub forwarder posts the
diagnostic records themselves. All three become `AlertRun`s for the watcher's pipeline. A well-formed
alert that names no scan (a metric alert, a rule on another table, a resolution) yields no runs and a
reason the caller can log; only a body of the wrong shape is an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

COMMON_SCHEMA_ID = "azureMonitorCommonAlertSchema"
SCAN_STATUS_CATEGORY = "ScanStatusLogEvent"
EMPTY_VALUE = "empty_value"  # what Purview's diagnostic logs write for "no value"

_ACCOUNT_IN_ID = re.compile(r"/providers/microsoft\.purview/accounts/([^/?#\s]+)", re.IGNORECASE)


@dataclass(frozen=True)
class AlertRun:
    """One scan run an alert reported; `status` and `run_id` are None when the rule did not carry them."""

    account: str | None
    source: str
    scan: str
    run_id: str | None
    status: str | None
    error: str | None


@dataclass(frozen=True)
class ParsedAlert:
    """The runs of a payload, or (when there are none) why: the webhook logs and counts it as ignored."""

    runs: list[AlertRun]
    ignored_reason: str | None = None


class AlertPayloadError(ValueError):
    """The body is JSON but not of any shape Azure Monitor (or a ScanStatusLogEvent) has."""


def parse_alert(payload: object) -> list[AlertRun]:
    """The runs a decoded webhook body names (the watcher contract's entry); see `inspect_alert`."""
    return inspect_alert(payload).runs


def inspect_alert(payload: object) -> ParsedAlert:
    """The runs a decoded body names, with the reason when it names none; AlertPayloadError on a bad shape."""
    if isinstance(payload, list):
        return _records(payload, "the list")
    if not isinstance(payload, dict):
        raise AlertPayloadError(f"expected a JSON object or list, got {_kind(payload)}")
    if isinstance(payload.get("records"), list):  # diagnostic settings' Event Hub / storage envelope
        return _records(payload["records"], "records")
    if _text(payload.get("category"), "category", lower=True) == SCAN_STATUS_CATEGORY.lower():
        return _records([payload], "the record")
    if payload.get("schemaId") == COMMON_SCHEMA_ID:
        return _common_schema(payload)
    schema = payload.get("schemaId")
    if schema is not None:
        return ParsedAlert([], f"schemaId {str(schema)[:80]!r} is not the common alert schema")
    return ParsedAlert(
        [], "not a common-schema alert nor a ScanStatusLogEvent (enable the common alert schema)"
    )


# --- the common alert schema -------------------------------------------------------------------------


def _common_schema(payload: Mapping[str, object]) -> ParsedAlert:
    data = _object(payload.get("data"), "data")
    essentials = _object(data.get("essentials"), "data.essentials")
    context = _object(data.get("alertContext"), "data.alertContext", optional=True)
    rule = _value(essentials.get("alertRule"), "essentials.alertRule") or "unnamed rule"
    condition = _value(essentials.get("monitorCondition"), "essentials.monitorCondition")
    if condition is not None and condition.lower() == "resolved":
        return ParsedAlert([], f"alert {rule!r} resolved: nothing to post")
    fallback_account = _account_of(
        _strings(essentials.get("alertTargetIDs"), "essentials.alertTargetIDs")
        + _strings(essentials.get("configurationItems"), "essentials.configurationItems")
    )
    rows = _context_rows(context)
    runs = _dedupe(run for row in rows if (run := _run_of(row, fallback_account)) is not None)
    if runs:
        return ParsedAlert(runs)
    signal = _value(essentials.get("signalType"), "essentials.signalType") or "unknown"
    what = "rows" if rows else "dimensions"
    return ParsedAlert(
        [],
        f"alert {rule!r} (signal {signal}) names no scan: its {what} lack DataSourceName and ScanName "
        "(split the log alert by DataSourceName, ScanName, ScanResultId and _ResourceId)",
    )


def _context_rows(context: Mapping[str, object]) -> list[dict[str, str | None]]:
    """Each alerting combination as {lower-cased column or dimension name: value}."""
    rows: list[dict[str, str | None]] = []
    search_results = _lookup(context, "SearchResults")
    if search_results is not None:  # the older log alerts: embedded query results
        rows.extend(_table_rows(_object(search_results, "alertContext.SearchResults")))
    condition = _object(context.get("condition"), "alertContext.condition", optional=True)
    for index, entry in enumerate(_list(condition.get("allOf"), "alertContext.condition.allOf")):
        where = f"alertContext.condition.allOf[{index}]"
        rows.append(_dimensions(_object(entry, where).get("dimensions"), f"{where}.dimensions"))
    if not rows and (dimensions := _lookup(context, "Dimensions")) is not None:
        rows.append(_dimensions(dimensions, "alertContext.Dimensions"))  # older metric-measurement alerts
    return rows


def _dimensions(value: object, where: str) -> dict[str, str | None]:
    result: dict[str, str | None] = {}
    for index, item in enumerate(_list(value, where)):
        dimension = _object(item, f"{where}[{index}]")
        name = _value(dimension.get("name"), f"{where}[{index}].name")
        if name:
            result.setdefault(name.lower(), _value(dimension.get("value"), f"{where}[{index}].value"))
    return result


def _table_rows(search_results: Mapping[str, object]) -> list[dict[str, str | None]]:
    rows: list[dict[str, str | None]] = []
    for t, table in enumerate(_list(search_results.get("tables"), "SearchResults.tables")):
        where = f"SearchResults.tables[{t}]"
        table = _object(table, where)
        names = []
        for c, column in enumerate(_list(table.get("columns"), f"{where}.columns")):
            column_name = _object(column, f"{where}.columns[{c}]").get("name")
            names.append((_value(column_name, f"{where}.columns[{c}].name") or "").lower())
        for r, row in enumerate(_list(table.get("rows"), f"{where}.rows")):
            cells = _list(row, f"{where}.rows[{r}]")
            values = [_value(cell, f"{where}.rows[{r}][{i}]") for i, cell in enumerate(cells)]
            rows.append({name: value for name, value in zip(names, values, strict=False) if name})
    return rows


def _run_of(row: Mapping[str, str | None], fallback_account: str | None) -> AlertRun | None:
    source, scan = row.get("datasourcename"), row.get("scanname")
    if not source or not scan:
        return None
    return AlertRun(
        account=_account_of([row.get("_resourceid"), row.get("resourceid")]) or fallback_account,
        source=source,
        scan=scan,
        run_id=row.get("scanresultid"),
        status=row.get("resulttype"),
        error=row.get("errordetails"),
    )


# --- raw ScanStatusLogEvent records ------------------------------------------------------------------


def _records(records: list[object], where: str) -> ParsedAlert:
    runs: list[AlertRun] = []
    for index, item in enumerate(records):
        record = _object(item, f"{where}[{index}]")
        category = _text(record.get("category"), f"{where}[{index}].category", lower=True)
        if category != SCAN_STATUS_CATEGORY.lower():
            continue  # a diagnostic setting may export other categories to the same hub
        properties = _object(record.get("properties"), f"{where}[{index}].properties")
        fields = {k.lower(): _value(v, f"{where}[{index}].properties.{k}") for k, v in properties.items()}
        fields["resulttype"] = _value(record.get("resultType"), f"{where}[{index}].resultType")
        if not fields.get("errordetails"):
            fields["errordetails"] = _value(
                record.get("resultDescription"), f"{where}[{index}].resultDescription"
            )
        fields["_resourceid"] = _value(record.get("resourceId"), f"{where}[{index}].resourceId")
        run = _run_of(fields, None)
        if run is not None:
            runs.append(run)
    if runs:
        return ParsedAlert(_dedupe(runs))
    if not records:
        return ParsedAlert([], "no records")
    return ParsedAlert([], f"none of {len(records)} record(s) is a ScanStatusLogEvent naming a scan")


# --- small helpers -----------------------------------------------------------------------------------


def _account_of(resource_ids: Iterable[str | None]) -> str | None:
    """The account name in the first `/providers/Microsoft.Purview/accounts/NAME` id, lower-cased: Azure
    Monitor upper-cases the ids of raw records and account names are case-insensitive."""
    for resource_id in resource_ids:
        if resource_id and (match := _ACCOUNT_IN_ID.search(resource_id)):
            return match.group(1).lower()
    return None


def _dedupe(runs: Iterable[AlertRun]) -> list[AlertRun]:
    return list(dict.fromkeys(runs))


def _lookup(mapping: Mapping[str, object], key: str) -> object:
    """A key of the PascalCase (older) context, matched case-insensitively."""
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    return next((v for k, v in mapping.items() if k.lower() == lowered), None)


def _object(value: object, where: str, *, optional: bool = False) -> dict[str, object]:
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise AlertPayloadError(f"{where}: expected an object, got {_kind(value)}")
    return value


def _list(value: object, where: str) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise AlertPayloadError(f"{where}: expected a list, got {_kind(value)}")
    return value


def _value(value: object, where: str) -> str | None:
    """A scalar as text; None for null, "" and Purview's "empty_value"."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise AlertPayloadError(f"{where}: expected a string, got {_kind(value)}")
    text = value.strip()
    return None if not text or text == EMPTY_VALUE else text


def _text(value: object, where: str, *, lower: bool = False) -> str | None:
    text = _value(value, where)
    return text.lower() if text is not None and lower else text


def _strings(value: object, where: str) -> list[str | None]:
    return [_value(item, f"{where}[{i}]") for i, item in enumerate(_list(value, where))]


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )
