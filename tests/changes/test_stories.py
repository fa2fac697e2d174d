"""The sample tenant's three stories: each failing source's likely trigger found, marked on the finding it
explains, told with who and when; the noise around it (outside the window, other resources, reads,
`Started` events) left out; failed attempts kept as attempts, never as triggers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

import jsonschema
import pytest

from checks.changes.record import ACTIVITY_LOG, Change
from sandbox import Sandbox, load_world
from tests.changes.conftest import WRITTEN, diagnosed


@dataclass(frozen=True)
class Story:
    source: str
    finding: str
    caller: str
    operation: str
    resource: str
    summary: str
    relation: str
    attempted_by: str | None
    left_out: tuple[str, ...]
    """Summaries or resource names that must not appear: noise around the story."""
    properties: tuple[str, ...] = ()
    """Before → after that the trigger tells (Microsoft.Resources/changes)."""


STORIES = [
    Story(
        source="sales-adls",
        finding="source-access",
        caller="bob@contoso.com",
        operation="Microsoft.Authorization/roleAssignments/delete",
        resource="stsalesadls",
        summary="role assignment Storage Blob Data Reader for contoso-pv deleted",
        relation="8 h before the first failed run",
        attempted_by="bob@contoso.com",
        left_out=("stsalesarchive", "listKeys", "role assignment Reader"),
    ),
    Story(
        source="crm-sql",
        finding="private-network",
        caller="alice@contoso.com",
        operation="Microsoft.Sql/servers/firewallRules/delete",
        resource="sql-crm-prod",
        summary="firewall rule AllowAllWindowsAzureIps deleted",
        relation="3 d before the first failed run",
        attempted_by="sp-terraform-platform",
        left_out=("sql-crm-dev", "server settings"),
    ),
    Story(
        source="finance-sql",
        finding="key-vault-access",
        caller="carol@contoso.com",
        operation="Microsoft.KeyVault/vaults/accessPolicies/write",
        resource="kv-finance",
        summary="access policy written",
        relation="8 h before the first failed run",
        attempted_by="dave@contoso.com",
        left_out=("kv-finance-dev", "vault settings"),
        properties=("accessPolicies[0].permissions.secrets[1] removed (was List)",),
    ),
    Story(
        source="lake-private",
        finding="private-network",
        caller="erin@contoso.com",
        operation="Microsoft.Storage/storageAccounts/write",
        resource="stlakeprivate",
        summary="settings (network rules, public access, keys) written",
        relation="4 d before the first failed run",
        attempted_by=None,
        left_out=("listKeys", "bypass", "costCenter"),
        properties=("publicNetworkAccess: Enabled → Disabled", "networkAcls.defaultAction: Allow → Deny"),
    ),
]


def _text(change: Change) -> str:
    return " ".join(str(v) for v in change.to_json().values())


@pytest.mark.parametrize("story", STORIES, ids=[s.source for s in STORIES])
async def test_the_trigger_is_found_and_marked(story: Story) -> None:
    async with Sandbox(load_world(None, rebase_to=WRITTEN)) as sb:
        report = await diagnosed(sb, story.source)
        made = [r for r in sb.requests if r.host_area != "token" and r.status != 401]
    [trigger] = [c for c in report.changes if c.likely_trigger]
    assert (trigger.finding, trigger.caller, trigger.operation) == (
        story.finding,
        story.caller,
        story.operation,
    )
    assert (trigger.resource, trigger.summary, trigger.relation) == (
        story.resource,
        story.summary,
        story.relation,
    )
    assert trigger.kind == ACTIVITY_LOG and trigger.status == "Succeeded" and trigger.scan
    assert report.changes[0] is trigger  # the story comes first
    failing = {f.check for f in report.findings if f.status.value == "fail"}
    assert story.finding in failing  # marked on a finding the report has
    assert tuple(p.text() for p in trigger.properties) == story.properties
    # the attempt around it is told as an attempt, never as a trigger
    attempts = [c for c in report.changes if c.attempted]
    assert [a.who for a in attempts] == ([story.attempted_by] if story.attempted_by else [])
    assert not any(a.likely_trigger for a in attempts)
    # noise left out: outside the window, other resources, reads, Started events (each event once)
    for noise in story.left_out:
        assert not any(noise in _text(c) for c in report.changes), noise
    ids = [c.event_id for c in report.changes if c.event_id]
    assert len(ids) == len(set(ids))
    assert all(c.at <= WRITTEN for c in report.changes if c.at)
    # every Activity Log query asked once
    asked = [(r.path, str(sorted(r.query.items()))) for r in made if "eventtypes" in r.path]
    assert asked and len(asked) == len(set(asked))


async def test_a_passing_source_has_no_trigger() -> None:
    async with Sandbox(load_world(None, rebase_to=WRITTEN)) as sb:
        report = await diagnosed(sb, "healthy-blob")
    assert not [c for c in report.changes if c.likely_trigger]
    assert report.to_json()["changes"] == [c.to_json() for c in report.changes]


async def test_the_report_json_carries_the_changes_and_stays_valid() -> None:
    async with Sandbox(load_world(None, rebase_to=WRITTEN)) as sb:
        report = await diagnosed(sb, "sales-adls")
    doc = report.to_json()
    schema = json.loads((resources.files("checks") / "data" / "report.schema.json").read_text())
    jsonschema.validate(doc, schema)
    [trigger] = [c for c in doc["changes"] if c["likelyTrigger"]]
    assert trigger["caller"] == "bob@contoso.com" and trigger["time"].startswith("2026-11-21T18:03:12")
