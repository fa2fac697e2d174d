"""The Activity Log reads: a refused read is one `unknown` line (never a failed report), pages are all
read, an event seen by two reads is told once, and the sandbox answers the service's filter grammar."""

from __future__ import annotations

import json
from datetime import timedelta
from importlib import resources
from typing import Any

import pytest
import yaml

from checks.changes.record import RESOURCE_CHANGE, UNKNOWN
from checks.diagnose import diagnose
from checks.errors import GatewayError
from checks.gateways.monitor import EVENTS_PATH, RESOURCE_GROUP, RESOURCE_PROVIDER, ActivityLogQuery
from checks.gateways.pipeline import Call, send_json
from checks.registry import CATALOGUE
from sandbox import Sandbox, load_world
from tests.changes.conftest import DOCS, WRITTEN, clients, diagnosed, event
from tests.checks.worlds import adls_world
from tests.fakes import FakeWorld

SUB = "7e2e9e63-bacb-4459-8c63-99796f32e7cf"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-sales-data"
ACCOUNT_ID = f"{RG}/providers/Microsoft.Storage/storageAccounts/stsalesadls"
MSI = "a364a7de-0aab-448a-b69b-c65d39340d0f"
SBDR = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"


def _sample_with(events: list[dict[str, Any]], **extra: Any) -> Any:
    """The sample tenant with its Activity Log replaced (YAML text as a mapping, rebased at load)."""
    raw = yaml.safe_load((resources.files("sandbox") / "worlds" / "sample.yaml").read_text())
    return load_world({**raw, "activityLog": events, **extra}, rebase_to=WRITTEN)


def _statuses(report: Any) -> list[tuple[str, str, str | None]]:
    return sorted((f.check, f.status.value, f.scan) for f in report.findings)


async def test_a_refused_activity_log_read_is_one_unknown_line() -> None:
    async with Sandbox(load_world(None, rebase_to=WRITTEN)) as sb:
        clean = await diagnosed(sb, "finance-sql")
        sb.add_fault({"path": r"/eventtypes/management/values", "status": 403, "code": "AuthorizationFailed"})
        refused = await diagnosed(sb, "finance-sql")
    [line] = [c for c in refused.changes if c.kind == UNKNOWN]
    assert not line.likely_trigger
    # what is left comes from the property changes (kv-finance's access policy), not the Activity Log
    assert {c.kind for c in refused.changes} == {UNKNOWN, RESOURCE_CHANGE}
    assert "403" in line.summary and "Activity Log" in line.summary
    assert line.permission and "Microsoft.Insights/eventtypes/values/read" in line.permission
    # the findings (and so the report's status) do not depend on it
    assert _statuses(refused) == _statuses(clean) and refused.status == clean.status
    assert any(c.likely_trigger for c in clean.changes)


async def test_without_activity_log_reads_the_report_has_no_changes() -> None:
    async with Sandbox(load_world(None, rebase_to=WRITTEN)) as sb:
        report = await diagnosed(sb, "sales-adls", what_changed=False)
        asked = [r for r in sb.requests if "eventtypes" in r.path]
    assert report.changes == [] and asked == []


async def test_every_page_is_read_and_an_event_seen_twice_is_told_once() -> None:
    ra_at_group = (
        f"{RG}/providers/Microsoft.Authorization/roleAssignments/9f0e2c1a-1111-4222-8333-444455556666"
    )
    body = {
        "properties": {
            "roleDefinitionId": f"/providers/Microsoft.Authorization/roleDefinitions/{SBDR}",
            "principalId": MSI,
            "scope": RG,
        }
    }
    events = [
        # on the source's group AND in the Authorization provider's list: two reads, one change
        event(
            "1",
            "Microsoft.Authorization/roleAssignments/delete",
            ra_at_group,
            "2026-11-21T18:03:12Z",
            responseBody=json.dumps(body),
        ),
        *[
            event(
                str(10 + i),
                "Microsoft.Storage/storageAccounts/write",
                ACCOUNT_ID,
                f"2026-11-2{i}T09:00:00Z",
                caller="adele.vance@contoso.com",
            )
            for i in range(3, 8)
        ],
    ]
    async with Sandbox(_sample_with(events, pageSize=2)) as sb:
        report = await diagnosed(sb, "sales-adls")
        reads = [r for r in sb.requests if "eventtypes" in r.path]
    [trigger] = [c for c in report.changes if c.likely_trigger]
    assert trigger.summary == "role assignment Storage Blob Data Reader for contoso-pv deleted"
    assert trigger.relation == "8 h before the first failed run"
    writes = [c for c in report.changes if c.operation == "Microsoft.Storage/storageAccounts/write"]
    assert len(writes) == 5  # across three pages of the group's read
    assert len([c for c in report.changes if c.event_id == events[0]["eventDataId"]]) == 1
    assert any("$skiptoken" in r.query for r in reads)  # the next links were followed
    keyed = [(r.path, str(sorted(r.query.items()))) for r in reads]
    assert len(keyed) == len(set(keyed))


async def test_a_change_after_the_first_failure_or_by_someone_else_is_no_trigger() -> None:
    other = "e4e42d9c-8d1e-44ce-bf65-67f17192d91a"
    ra = (
        f"{ACCOUNT_ID}/providers/Microsoft.Authorization/roleAssignments/0a0b0c0d-1111-4222-8333-444455556666"
    )

    def deleted(key: str, principal: str, when: str) -> dict[str, Any]:
        body = {"properties": {"roleDefinitionId": SBDR, "principalId": principal, "scope": ACCOUNT_ID}}
        return event(
            key, "Microsoft.Authorization/roleAssignments/delete", ra, when, responseBody=json.dumps(body)
        )

    events = [
        deleted("1", MSI, "2026-11-23T10:00:00Z"),  # after the first failed run (11-22 02:00)
        deleted("2", other, "2026-11-20T10:00:00Z"),  # in the span, but someone else's assignment
        deleted("3", MSI, "2026-11-14T10:00:00Z"),  # before the last success: outside the window
    ]
    async with Sandbox(_sample_with(events)) as sb:
        report = await diagnosed(sb, "sales-adls")
    assert not [c for c in report.changes if c.likely_trigger]
    assert [c.event_id for c in report.changes] == [events[0]["eventDataId"], events[1]["eventDataId"]]
    assert report.changes[0].relation == "32 h after the first failed run"


async def _get(sb: Sandbox, params: dict[str, str]) -> Any:
    async with clients(sb) as azure:
        url = azure.monitor._client.format_url(f"/subscriptions/{SUB}/providers/{EVENTS_PATH}")
        call = Call("read the Activity Log")
        return await send_json(
            azure.monitor._client, call, "GET", url, {"api-version": "2015-04-01", **params}
        )


RANGE = "eventTimestamp ge '2026-11-20T00:00:00Z' and eventTimestamp le '2026-11-28T00:00:00Z'"


@pytest.mark.parametrize(
    "flt",
    [
        f"{RANGE} and status eq 'Succeeded'",  # not one of the four narrowing fields
        f"{RANGE} and resourceGroupName eq 'rg-crm' and resourceProvider eq 'Microsoft.Sql'",  # two of them
        "resourceGroupName eq 'rg-crm'",  # no start time
        f"{RANGE} or resourceGroupName eq 'rg-crm'",
    ],
)
async def test_the_sandbox_refuses_what_the_service_refuses(flt: str) -> None:
    async with Sandbox(load_world(None, rebase_to=WRITTEN)) as sb:
        with pytest.raises(GatewayError) as caught:
            await _get(sb, {"$filter": flt})
    assert caught.value.status == 400


async def test_the_sandbox_filters_selects_and_orders_newest_first() -> None:
    async with Sandbox(load_world(None, rebase_to=WRITTEN)) as sb:
        doc = await _get(
            sb,
            {
                "$filter": f"{RANGE} and resourceGroupName eq 'rg-crm'",
                "$select": "eventDataId,eventTimestamp,operationName",
            },
        )
        by_provider = await _get(sb, {"$filter": f"{RANGE} and resourceProvider eq 'Microsoft.KeyVault'"})
        with pytest.raises(GatewayError):
            await _get(sb, {"$filter": RANGE, "$select": "eventDataId,secretValue"})
    events = doc["value"]
    assert events and all(set(e) == {"eventDataId", "eventTimestamp", "operationName"} for e in events)
    times = [e["eventTimestamp"] for e in events]
    assert times == sorted(times, reverse=True)
    assert {e["resourceProviderName"]["value"] for e in by_provider["value"]} == {"Microsoft.KeyVault"}


def test_a_query_names_one_narrowing_filter_in_the_services_grammar() -> None:
    ask = ActivityLogQuery(SUB, WRITTEN - timedelta(days=7), WRITTEN, RESOURCE_GROUP, "rg-o'hara")
    assert ask.filter() == (
        "eventTimestamp ge '2026-11-21T08:00:00.0000000Z' and eventTimestamp le "
        "'2026-11-28T08:00:00.0000000Z' and resourceGroupName eq 'rg-o''hara'"
    )
    assert ActivityLogQuery(SUB, WRITTEN, WRITTEN, RESOURCE_PROVIDER, "x").key != ask.key


async def test_no_monitor_wired_means_no_changes_rather_than_a_refusal() -> None:
    fake = FakeWorld(adls_world())  # the unit tests' gateways: no Activity Log reader
    report = await diagnose(fake.facts(), "sales-adls", checks=CATALOGUE, docs_base=DOCS, now=WRITTEN)
    assert report.changes == [] and report.to_json()["changes"] == []
