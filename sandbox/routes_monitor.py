"""What changed: Azure Monitor's Activity Log and ARM's resource changes, over the world's `activityLog`
(Azure's own `EventData` objects) and `resourceChanges` (`Microsoft.Resources/changes` objects).

`GET /subscriptions/{id}/providers/Microsoft.Insights/eventtypes/management/values`, newest first.

The `$filter` grammar is the service's, and as narrow: `eventTimestamp ge '…'` (required), optionally
`eventTimestamp le '…'`, each once, and at most one of `resourceGroupName`, `resourceUri`,
`resourceProvider`, `correlationId` (`eq`); anything else is a 400, as is a start older than the 90 days
the service keeps (https://github.com/Azure/azure-cli/issues/4885). `$select` trims each event to the
listed `EventData` properties (the spec's `x-ms-odata`; its own example selects `id`); paging by
`nextLink`; `api-version` 2015-04-01 only.
https://learn.microsoft.com/en-us/rest/api/monitor/activity-logs/list
(azure-rest-api-specs monitor/resource-manager/Microsoft.Insights/stable/2015-04-01/activityLogs_API.json)

`GET {resourceId}/providers/Microsoft.Resources/changes[/{id}]` (a top-level resource): its changes of the
last 14 days (by `changeAttributes.timestamp`), newest first, `$top` 1-100, paged by `nextLink`;
`api-version` 2022-05-01 (or the 2022-03-01-preview it replaced).
https://learn.microsoft.com/en-us/rest/api/resources/changes/list
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from aiohttp import web

from sandbox.context import Context
from sandbox.errors import ApiError, json_response
from sandbox.filters import eq_clause, query_param, split_and
from sandbox.paging import page
from sandbox.world import Json

PATH = re.compile(
    r"^/subscriptions/([^/]+)/providers/microsoft\.insights/eventtypes/management/values/?$", re.I
)
CHANGES = re.compile(
    r"^(/subscriptions/[^/]+/resourcegroups/[^/]+/providers/[^/]+/[^/]+/[^/]+)"
    r"/providers/microsoft\.resources/changes(?:/([^/]+))?/?$",
    re.I,
)
CHANGES_KEPT = timedelta(days=14)
ACTIVITY_LOG_KEPT = timedelta(days=90)
ACTIVITY_LOG_VERSIONS = frozenset({"2015-04-01"})
CHANGES_VERSIONS = frozenset({"2022-05-01", "2022-03-01-preview"})
_TIME = re.compile(r"^\s*eventTimestamp\s+(ge|le)\s+'([^']*)'\s*$", re.I)
NARROWING = {
    "resourcegroupname": "resourceGroupName",
    "resourceuri": "resourceUri",
    "resourceprovider": "resourceProvider",
    "correlationid": "correlationId",
}
SELECTABLE = {
    name.lower(): name
    for name in (
        "authorization",
        "caller",
        "category",
        "claims",
        "correlationId",
        "description",
        "eventDataId",
        "eventName",
        "eventTimestamp",
        "httpRequest",
        "id",
        "level",
        "operationId",
        "operationName",
        "properties",
        "resourceGroupName",
        "resourceProviderName",
        "resourceId",
        "resourceType",
        "status",
        "submissionTimestamp",
        "subStatus",
        "subscriptionId",
        "tenantId",
    )
}


def matches(path: str) -> bool:
    return PATH.match(path) is not None or CHANGES.match(path) is not None


def _bad(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def _time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _bad(f"The time '{text}' in $filter is not a valid date-time.") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_filter(text: str | None, now: datetime) -> tuple[datetime, datetime, tuple[str, str] | None]:
    """(start, end, (field, value) or None), as the service accepts them; anything else is a 400."""
    if not text or not text.strip():
        raise _bad("The $filter query parameter is required and must contain eventTimestamp ge.")
    start: datetime | None = None
    end: datetime | None = None
    narrowing: tuple[str, str] | None = None
    for clause in split_and(text):
        if match := _TIME.match(clause):
            when = _time(match.group(2))
            if (start if match.group(1).lower() == "ge" else end) is not None:
                raise _bad(f"The $filter names eventTimestamp {match.group(1)} twice.")
            if match.group(1).lower() == "ge":
                start = when
            else:
                end = when
            continue
        parsed = eq_clause(clause)
        if parsed is None or parsed[0].lower() not in NARROWING or narrowing is not None:
            raise _bad(f"The $filter clause '{clause}' is not supported. No other syntax is allowed.")
        narrowing = (NARROWING[parsed[0].lower()], parsed[1])
    if start is None:
        raise _bad("The $filter must contain eventTimestamp ge '<start time>'.")
    end = end or now
    if start < now - ACTIVITY_LOG_KEPT:
        raise _bad("The start time of $filter cannot be more than 90 days in the past.")
    if end < start:
        raise _bad("The end time of $filter is before its start time.")
    return start, end, narrowing


def _api_version(request: web.Request, accepted: frozenset[str]) -> None:
    version = query_param(request.query, "api-version") or ""
    if version not in accepted:
        raise ApiError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. The supported versions are "
            f"'{', '.join(sorted(accepted))}'.",
        )


def _value(field: object) -> str:
    if isinstance(field, dict):
        return str(field.get("value") or "")
    return str(field or "")


def _subscription(event: Json) -> str:
    if event.get("subscriptionId"):
        return str(event["subscriptionId"]).lower()
    parts = str(event.get("resourceId", "")).strip("/").split("/")
    return parts[1].lower() if len(parts) > 1 else ""


def _keeps(event: Json, narrowing: tuple[str, str] | None) -> bool:
    if narrowing is None:
        return True
    name, value = narrowing[0], narrowing[1].lower()
    if name == "resourceGroupName":
        return str(event.get("resourceGroupName", "")).lower() == value
    if name == "resourceUri":
        return str(event.get("resourceId", "")).lower().rstrip("/") == value.rstrip("/")
    if name == "resourceProvider":
        return _value(event.get("resourceProviderName")).lower() == value
    return str(event.get("correlationId", "")).lower() == value


def _select(text: str | None) -> list[str] | None:
    if text is None or not text.strip():
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n.lower() not in SELECTABLE]
    if unknown:
        raise _bad(f"The $select property '{unknown[0]}' is not supported.")
    return [SELECTABLE[n.lower()] for n in names]


async def handle(ctx: Context, request: web.Request) -> web.Response:
    if request.method != "GET":
        raise ApiError(405, "UnsupportedHttpVerb", f"The HTTP verb '{request.method}' is not supported.")
    if (changes := CHANGES.match(request.path)) is not None:
        _api_version(request, CHANGES_VERSIONS)
        return _changes(ctx, request, changes.group(1), changes.group(2))
    match = PATH.match(request.path)
    if match is None:
        raise ApiError(404, "NotFound", f"The path '{request.path}' is not an Activity Log path.")
    _api_version(request, ACTIVITY_LOG_VERSIONS)
    subscription = match.group(1).lower()
    if subscription not in ctx.subscriptions:
        raise ApiError(
            404, "SubscriptionNotFound", f"The subscription '{match.group(1)}' could not be found."
        )
    start, end, narrowing = parse_filter(query_param(request.query, "$filter"), ctx.now)
    fields = _select(query_param(request.query, "$select"))
    found: list[tuple[datetime, Json]] = []
    for event in ctx.world.activity_log:
        when = _time(str(event.get("eventTimestamp")))
        if _subscription(event) == subscription and start <= when <= end and _keeps(event, narrowing):
            found.append((when, event))
    found.sort(key=lambda pair: pair[0], reverse=True)  # the service answers newest first
    events = [e if fields is None else {k: e[k] for k in fields if k in e} for _, e in found]
    chunk, next_link = page(events, request, base_url=ctx.base_url, page_size=ctx.world.page_size)
    body: Json = {"value": chunk}
    if next_link:
        body["nextLink"] = next_link
    return json_response(body)


def _change_time(change: Json) -> datetime:
    attributes = (change.get("properties") or {}).get("changeAttributes") or {}
    return _time(str(attributes.get("timestamp") or "1970-01-01T00:00:00Z"))


def _changes(ctx: Context, request: web.Request, target: str, change_id: str | None) -> web.Response:
    if target.lower() not in ctx.resources:
        raise ApiError(404, "ResourceNotFound", f"The Resource '{target}' was not found.")
    raw_top = query_param(request.query, "$top")
    try:
        top = int(raw_top) if raw_top is not None else 100
    except ValueError:
        top = 0
    if not 1 <= top <= 100:
        raise _bad(f"The value of $top must be between 1 and 100, got '{raw_top}'.")
    floor = ctx.now - CHANGES_KEPT
    found = [
        c
        for c in ctx.world.resource_changes
        if str((c.get("properties") or {}).get("targetResourceId", "")).lower() == target.lower()
        and _change_time(c) >= floor
    ]
    found.sort(key=_change_time, reverse=True)
    if change_id is not None:
        one = next((c for c in found if str(c.get("name", "")).lower() == change_id.lower()), None)
        if one is None:
            raise ApiError(404, "ChangeNotFound", f"The change '{change_id}' was not found.")
        return json_response(one)
    size = min(top, ctx.world.page_size)
    chunk, next_link = page(found, request, base_url=ctx.base_url, page_size=size)
    body: Json = {"value": chunk}
    if next_link:
        body["nextLink"] = next_link
    return json_response(body)
