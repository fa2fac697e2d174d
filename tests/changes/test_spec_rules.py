"""What a strict stand-in holds the product to (the specs' parameters, api-versions, the 90 days kept),
and the trigger rules for what an event itself can say: a delete that found nothing (204), a role on the
Purview account, an `accessPolicies/add`, a write whose request body only opened or tagged."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import pytest
import yaml

from checks.changes.record import ACTIVITY_LOG, UNKNOWN, Change
from checks.diagnose import diagnose
from checks.errors import GatewayError
from checks.facts import Facts
from checks.gateways.pipeline import Call, send_json
from checks.registry import CATALOGUE
from handlers.render.what_changed import changes_message
from sandbox import Sandbox, load_world
from tests.changes.conftest import DOCS, WRITTEN, clients, diagnosed, event
from tests.changes.test_reads import ACCOUNT_ID, MSI, SBDR, SUB, _get, _sample_with
from tests.changes.test_render import _report

_TIME = r"'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z'"
FILTER = re.compile(
    rf"^eventTimestamp ge {_TIME} and eventTimestamp le {_TIME}"
    r"( and (resourceGroupName|resourceUri|resourceProvider|correlationId) eq '([^']|'')*')?$"
)
"""The spec's patterns (activityLogs_API.json, ActivityLogs_List `$filter`): "No other syntax is allowed"."""
LAKE = (
    f"/subscriptions/{SUB}/resourceGroups/rg-lake/providers/Microsoft.Storage/storageAccounts/stlakeprivate"
)
KV_FINANCE = f"/subscriptions/{SUB}/resourceGroups/rg-finance/providers/Microsoft.KeyVault/vaults/kv-finance"
PURVIEW = f"/subscriptions/{SUB}/resourceGroups/rg-purview/providers/Microsoft.Purview/accounts/contoso-pv"


def _raw_sample() -> dict[str, Any]:
    raw = yaml.safe_load((resources.files("sandbox") / "worlds" / "sample.yaml").read_text())
    assert isinstance(raw, dict)
    return raw


def _triggers(changes: list[Change]) -> list[Change]:
    return [c for c in changes if c.likely_trigger]


async def test_the_product_asks_only_what_the_specs_allow() -> None:
    async with Sandbox(load_world(None, rebase_to=WRITTEN)) as sb:
        report = await diagnosed(sb, "sales-adls")
        made = [r for r in sb.requests if r.host_area == "arm"]
    logs = [r for r in made if "/eventtypes/management/values" in r.path]
    changes = [r for r in made if r.path.lower().endswith("/providers/microsoft.resources/changes")]
    assert logs and changes and all(r.status == 200 for r in logs + changes)
    for r in logs:
        assert r.query["api-version"] == "2015-04-01" and FILTER.match(r.query["$filter"]), r.query
        # no $select: the spec's selectable names (SelectParameter) do not include `caller`
        assert set(r.query) <= {"api-version", "$filter", "$skiptoken"}
    for r in changes:  # 2022-05-01 takes $top and $skipToken only (no time range)
        assert r.query["api-version"] == "2022-05-01" and r.query["$top"] == "100"
        assert set(r.query) <= {"api-version", "$top", "$skiptoken"}
    told = [c for c in report.changes if c.kind == ACTIVITY_LOG]
    assert told and all(c.caller for c in told)  # whole events: who is always there


RANGE = "eventTimestamp ge '2026-11-20T00:00:00Z' and eventTimestamp le '2026-11-28T00:00:00Z'"


@pytest.mark.parametrize(
    "params",
    [
        {"api-version": "2022-05-01", "$filter": RANGE},  # another API's version
        {"$filter": "eventTimestamp ge '2026-08-29T07:00:00Z'"},  # older than the 90 days kept
        {"$filter": f"{RANGE} and eventTimestamp ge '2026-11-21T00:00:00Z'"},  # a bound given twice
        {"$filter": "eventTimestamp ge '2026-11-28T00:00:00Z' and eventTimestamp le '2026-11-20T00:00:00Z'"},
        {"$filter": RANGE, "$select": "eventDataId,secretValue"},  # not an EventData property
    ],
    ids=["api-version", "retention", "twice", "backwards", "select"],
)
async def test_the_sandbox_refuses_like_the_service(params: dict[str, str]) -> None:
    async with Sandbox(load_world(None, rebase_to=WRITTEN)) as sb:
        with pytest.raises(GatewayError) as caught:
            await _get(sb, params)
        selected = await _get(sb, {"$filter": RANGE, "$select": "id,caller,subStatus"})
    assert caught.value.status == 400
    assert selected["value"] and all(set(e) <= {"id", "caller", "subStatus"} for e in selected["value"])


async def test_the_changes_api_answers_its_own_version_only() -> None:
    async with Sandbox(load_world(None, rebase_to=WRITTEN)) as sb, clients(sb) as azure:
        client = azure.monitor._client
        url = client.format_url(f"{LAKE}/providers/Microsoft.Resources/changes")
        with pytest.raises(GatewayError) as caught:
            await send_json(client, Call("list changes"), "GET", url, {"api-version": "2015-04-01"})
    assert caught.value.status == 400


async def test_ninety_days_stay_inside_the_retention_when_the_service_clock_is_ahead() -> None:
    """The product's clock 10 minutes behind the service's: a 90-day window is still accepted."""
    async with Sandbox(load_world(None, rebase_to=WRITTEN)) as sb, clients(sb) as azure:
        facts = Facts(azure.gateways("contoso-pv"), "contoso-pv")
        report = await diagnose(
            facts,
            "sales-adls",
            checks=CATALOGUE,
            docs_base=DOCS,
            now=WRITTEN - timedelta(minutes=10),
            changes_days=90,
        )
        asked = [r for r in sb.requests if "/eventtypes/management/values" in r.path]
    assert asked and all(r.status == 200 for r in asked)
    assert not [c for c in report.changes if c.kind == UNKNOWN]
    assert _triggers(report.changes)


def _role_deleted(key: str, scope: str, when: str, **extra: Any) -> dict[str, Any]:
    ra = (
        f"{scope}/providers/Microsoft.Authorization/roleAssignments/0a0b0c0d-1111-4222-8333-44445555{key:0>4}"
    )
    body = {"properties": {"roleDefinitionId": SBDR, "principalId": MSI, "scope": scope}}
    doc = event(
        key, "Microsoft.Authorization/roleAssignments/delete", ra, when, responseBody=json.dumps(body)
    )
    return {**doc, **extra}


async def test_a_delete_that_found_nothing_or_a_role_on_the_purview_account_is_no_trigger() -> None:
    events = [
        # in the span, the scan's identity, but answered 204: the assignment was not there
        _role_deleted(
            "1",
            ACCOUNT_ID,
            "2026-11-21T10:00:00Z",
            subStatus={"value": "NoContent", "localizedValue": "No Content (HTTP Status Code: 204)"},
        ),
        # in the span, the scan's identity, but on the Purview account: no access to the source
        _role_deleted("2", PURVIEW, "2026-11-21T11:00:00Z"),
    ]
    async with Sandbox(_sample_with(events)) as sb:
        report = await diagnosed(sb, "sales-adls")
    assert _triggers(report.changes) == []
    by_id = {c.event_id: c for c in report.changes}
    nothing = by_id[events[0]["eventDataId"]]
    assert nothing.summary.endswith("deleted (it did not exist: nothing was removed)")
    assert by_id[events[1]["eventDataId"]].resource == "contoso-pv"  # told, unmarked


def _with_request_bodies(raw: dict[str, Any], bodies: dict[str, Any], *, started: bool) -> dict[str, Any]:
    """The sample's events with a `properties.requestbody` added to the ones named by eventDataId, or
    (`started`) to a `Started` event of the same operation a second before, as Azure often keeps it."""
    events = []
    for doc in raw["activityLog"]:
        body = bodies.get(doc["eventDataId"])
        if body is not None:
            with_body = {**doc, "properties": {**doc["properties"], "requestbody": json.dumps(body)}}
            if started:
                at = datetime.fromisoformat(doc["eventTimestamp"]) - timedelta(seconds=1)
                events.append(
                    {
                        **with_body,
                        "eventDataId": f"{doc['eventDataId'][:-4]}0001",
                        "eventName": {"value": "BeginRequest", "localizedValue": "Begin request"},
                        "status": {"value": "Started", "localizedValue": "Started"},
                        "subStatus": {"value": "", "localizedValue": ""},
                        "eventTimestamp": at.isoformat().replace("+00:00", "Z"),
                    }
                )
            else:
                doc = with_body
        events.append(doc)
    return {**raw, "activityLog": events}


@pytest.mark.parametrize("started", [False, True], ids=["on-the-final-event", "on-the-started-event"])
async def test_a_write_whose_request_only_opened_or_tagged_is_no_trigger(started: bool) -> None:
    """Property changes refused: the request bodies decide (erin closed it; adele only opened and tagged)."""
    raw = _with_request_bodies(
        _raw_sample(),
        {
            "4298a666-e65e-6bb3-3e95-f749462a8212": {  # erin
                "properties": {"publicNetworkAccess": "Disabled", "networkAcls": {"defaultAction": "Deny"}}
            },
            "3489ae24-0070-3b51-1a9c-43a70664e340": {  # adele: wider, and a tag
                "properties": {"networkAcls": {"defaultAction": "Allow", "bypass": "AzureServices"}},
                "tags": {"costCenter": "4711"},
            },
        },
        started=started,
    )
    async with Sandbox(load_world(raw, rebase_to=WRITTEN)) as sb:
        sb.add_fault({"path": r"/providers/Microsoft\.Resources/changes", "status": 403})
        report = await diagnosed(sb, "lake-private")
    [trigger] = _triggers(report.changes)
    assert trigger.caller == "erin@contoso.com" and trigger.finding == "private-network"
    assert any(c.caller == "adele.vance@contoso.com" and not c.likely_trigger for c in report.changes)


async def test_an_access_policy_added_is_no_trigger() -> None:
    raw = _raw_sample()
    added = event(
        "77",
        "Microsoft.KeyVault/vaults/accessPolicies/write",
        f"{KV_FINANCE}/accessPolicies/add",
        "2026-11-26T18:00:00Z",  # after carol's replace, before the first failed run
        caller="frank@contoso.com",  # no request body kept: the operation kind alone decides
    )
    raw = {**raw, "activityLog": [*raw["activityLog"], added]}
    async with Sandbox(load_world(raw, rebase_to=WRITTEN)) as sb:
        report = await diagnosed(sb, "finance-sql")
    [trigger] = _triggers(report.changes)
    assert trigger.caller == "carol@contoso.com"
    assert any(c.caller == "frank@contoso.com" and not c.likely_trigger for c in report.changes)


def test_the_command_answers_fallback_text_is_escaped_too() -> None:
    evil = Change(
        kind=ACTIVITY_LOG,
        summary="<!channel> *now*",
        at=WRITTEN - timedelta(hours=1),
        resource="<https://x|y>",
        caller="<@U123>",
        event_id="e",
    )
    message = changes_message(_report(evil), days=7)
    assert "<!channel>" not in message["text"] and "<@U123>" not in message["text"]
    assert "<https://x|y>" not in message["text"] and "&lt;!channel&gt;" in message["text"]
    assert "<!channel>" not in json.dumps(message["blocks"])
