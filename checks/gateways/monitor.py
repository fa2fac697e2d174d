"""Azure Monitor's Activity Log: who wrote, deleted or acted on what, read on the ARM pipeline.

`GET /subscriptions/{id}/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01`
with a `$filter` of a time range and at most one of `resourceGroupName`, `resourceUri`, `resourceProvider`
or `correlationId` ("No other syntax is allowed"), paged by `nextLink`. No `$select`: the spec's list of
selectable names (`SelectParameter`: authorization, claims, correlationId, … subscriptionId) has no
`caller`, the one field the timeline cannot do without, and `$select` is optional; whole events cost a few
kilobytes each on reads already narrowed to a resource group or a provider.
Spec: azure-rest-api-specs specification/monitor/resource-manager/Microsoft.Insights/stable/2015-04-01/
activityLogs_API.json (ActivityLogs_List).
Reader on the subscription covers it (`Microsoft.Insights/eventtypes/values/read`).
https://learn.microsoft.com/en-us/rest/api/monitor/activity-logs/list
https://learn.microsoft.com/en-us/azure/azure-monitor/essentials/rest-activity-log
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import quote

from checks.gateways.api import Json
from checks.gateways.pipeline import Call, Client, get_pages, guarded

ACTIVITY_LOG_API = "2015-04-01"
EVENTS_PATH = "Microsoft.Insights/eventtypes/management/values"
CHANGES_API = "2022-05-01"
CHANGES_READ = "Reader on the resource (Microsoft.Resources/changes, 14 days of property changes)"
ACTIVITY_LOG_READ = "Microsoft.Insights/eventtypes/values/read (Reader on the subscription)"
RETENTION_MARGIN_S = 3600
"""How far inside the 90 days a capped window starts: the service refuses a start time older than its
retention (`az monitor activity-log list` answers 'Bad Request' just past 90 days:
https://github.com/Azure/azure-cli/issues/4885), and its clock is read after ours."""

NOT_CONFIGURED = "NotConfigured"
"""The code of the error `Facts` raises when no monitor gateway is wired (a stand-in, a unit test)."""
RESOURCE_GROUP = "resourceGroupName"
RESOURCE_URI = "resourceUri"
RESOURCE_PROVIDER = "resourceProvider"
CORRELATION_ID = "correlationId"


def odata_time(when: datetime) -> str:
    """`2026-11-21T18:03:00.0000000Z`: the format the spec's filter examples use."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


@dataclass(frozen=True)
class ActivityLogQuery:
    """One Activity Log read: a subscription, a time range and at most one narrowing filter."""

    subscription_id: str
    start: datetime
    end: datetime
    field: str | None = None  # RESOURCE_GROUP, RESOURCE_URI, RESOURCE_PROVIDER or CORRELATION_ID
    value: str = ""

    @property
    def key(self) -> tuple[str, ...]:
        return (
            self.subscription_id.lower(),
            odata_time(self.start),
            odata_time(self.end),
            self.field or "",
            self.value.lower(),
        )

    def filter(self) -> str:
        value = self.value.replace("'", "''")
        text = f"eventTimestamp ge '{odata_time(self.start)}' and eventTimestamp le '{odata_time(self.end)}'"
        return f"{text} and {self.field} eq '{value}'" if self.field else text

    def label(self) -> str:
        scope = f"{self.field} {self.value}" if self.field else f"subscription {self.subscription_id}"
        return f"read the Activity Log of {scope}"


class MonitorApi(Protocol):
    async def activity_log(self, query: ActivityLogQuery) -> list[Json]:
        """Every EventData of the query (all pages), as Azure sends them."""
        ...

    async def resource_changes(self, resource_id: str) -> list[Json]:
        """`Microsoft.Resources/changes` of a top-level resource: the last 14 days' property changes
        (before → after), every page."""
        ...


class MonitorGateway:
    """`MonitorApi` on an ARM pipeline (retries, `Retry-After`, logging, the bot's user agent)."""

    def __init__(self, client: Client, *, call_timeout: float) -> None:
        self._client = client
        self._timeout = call_timeout

    async def close(self) -> None:
        await self._client.close()

    async def activity_log(self, query: ActivityLogQuery) -> list[Json]:
        call = Call(query.label(), ACTIVITY_LOG_READ)
        path = f"/subscriptions/{query.subscription_id}/providers/{EVENTS_PATH}"
        url = self._client.format_url(quote(path, safe="/"))
        params = {"$filter": query.filter()}
        return await guarded(
            call,
            self._timeout,
            lambda: get_pages(self._client, call, url, ACTIVITY_LOG_API, params=params),
        )

    async def resource_changes(self, resource_id: str) -> list[Json]:
        """`GET {resource}/providers/Microsoft.Resources/changes?api-version=2022-05-01&$top=100`, then
        each `nextLink` (it carries `$skipToken`). 2022-05-01 takes only `$top` (1-100) and `$skipToken`:
        no `$startTime`/`$endTime` in this version (the service keeps 14 days; the caller filters).
        Spec: specification/resources/resource-manager/Microsoft.Resources/changes/stable/2022-05-01/
        changes.json (Changes_List); https://learn.microsoft.com/en-us/rest/api/resources/changes/list
        """
        call = Call(f"read the property changes of {resource_id}", CHANGES_READ)
        path = f"{resource_id.rstrip('/')}/providers/Microsoft.Resources/changes"
        url = self._client.format_url(quote(path, safe="/"))
        return await guarded(
            call,
            self._timeout,
            lambda: get_pages(self._client, call, url, CHANGES_API, params={"$top": "100"}),
        )
