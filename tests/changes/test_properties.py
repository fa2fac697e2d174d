"""Property changes (`Microsoft.Resources/changes`): told on the write that made them, deciding whether that
write narrowed anything; answering alone when the Activity Log is refused; optional when refused
themselves. The sandbox serves them as ARM does: 14 days, newest first, `$top` 1 to 100."""

from __future__ import annotations

from typing import Any

import pytest

from checks.changes.record import RESOURCE_CHANGE, UNKNOWN
from checks.errors import GatewayError
from checks.gateways.pipeline import Call, send_json
from sandbox import Sandbox, load_world
from tests.changes.conftest import WRITTEN, clients, diagnosed

LAKE = (
    "/subscriptions/7e2e9e63-bacb-4459-8c63-99796f32e7cf/resourceGroups/rg-lake/providers/"
    "Microsoft.Storage/storageAccounts/stlakeprivate"
)


async def test_refused_activity_log_leaves_the_property_changes_to_answer() -> None:
    async with Sandbox(load_world(None, rebase_to=WRITTEN)) as sb:
        sb.add_fault({"path": r"/eventtypes/management/values", "status": 403, "code": "AuthorizationFailed"})
        report = await diagnosed(sb, "lake-private")
    trigger, unknown = report.changes  # the likely trigger first, then what could not be read
    assert unknown.kind == UNKNOWN and "403" in unknown.summary
    assert trigger.kind == RESOURCE_CHANGE and trigger.likely_trigger and trigger.finding == "private-network"
    assert trigger.summary == "publicNetworkAccess: Enabled → Disabled and 1 more"
    assert trigger.caller is None and trigger.who == "an unknown caller"
    assert trigger.relation == "4 d before the first failed run"


async def test_refused_property_changes_leave_the_activity_log_to_answer() -> None:
    async with Sandbox(load_world(None, rebase_to=WRITTEN)) as sb:
        sb.add_fault({"path": r"/providers/Microsoft\.Resources/changes", "status": 403})
        report = await diagnosed(sb, "lake-private")
    assert not [c for c in report.changes if c.kind == UNKNOWN]  # optional: no line for it
    triggers = [c for c in report.changes if c.likely_trigger]
    # without before → after, each write in the span may have closed the network: both are told
    assert {c.caller for c in triggers} == {"erin@contoso.com", "adele.vance@contoso.com"}
    assert all(not c.properties for c in report.changes)


async def _changes(sb: Sandbox, target: str, **params: str) -> Any:
    async with clients(sb) as azure:
        client = azure.monitor._client
        url = client.format_url(f"{target}/providers/Microsoft.Resources/changes")
        call = Call("list changes")
        return await send_json(client, call, "GET", url, {"api-version": "2022-05-01", **params})


async def test_the_sandbox_serves_fourteen_days_newest_first() -> None:
    async with Sandbox(load_world(None, rebase_to=WRITTEN)) as sb:
        doc = await _changes(sb, LAKE)
        with pytest.raises(GatewayError) as top:
            await _changes(sb, LAKE, **{"$top": "0"})
        paged = await _changes(sb, LAKE, **{"$top": "1"})
    times = [c["properties"]["changeAttributes"]["timestamp"] for c in doc["value"]]
    assert times == sorted(times, reverse=True) and len(times) == 2  # the 11-10 change is too old
    assert all(not t.startswith("2026-11-10") for t in times)
    assert top.value.status == 400
    assert len(paged["value"]) == 1 and "$skiptoken" in paged["nextLink"]
