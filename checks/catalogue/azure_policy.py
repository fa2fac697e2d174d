"""azure-policy: "Is an Azure Policy preventing updates to Storage accounts?" (scans no longer run).

The guide's concern is the Purview account's own managed resources: Purview creates and regularly updates
its managed storage account (and its managed Event Hubs namespace), and a `deny` policy those resources do
not comply with blocks the updates, so scans fail. Decisions, from Policy Insights' latest states and the
scans' own runs:

- A NonCompliant deny state on a managed resource is an account-level hazard: `warn` on every source of
  the account, until the newest finished run of one of *this* source's scans failed with an error naming a
  policy denial (`RequestDisallowedByPolicy`, "disallowed by policy") that points at that resource or
  assignment (or at nothing more specific): then `fail`, with `causeSince` = the state's timestamp.
  https://learn.microsoft.com/en-us/purview/troubleshoot-connections#scans-no-longer-run
  https://learn.microsoft.com/en-us/purview/create-microsoft-purview-portal-faq (the exception tag)
- Accounts created after 15 December 2023 (or with API version 2023-05-01-preview onwards) keep no managed
  storage account in the customer's subscription (ARM shows `properties.ingestionStorage`, no
  `managedResources` / `managedResourceGroupName`): no policy of the customer's can block them, `skipped`.
  https://learn.microsoft.com/en-us/purview/catalog-private-link-end-to-end (accounts created before /
  after December 15, 2023)
- A deny policy on the *source's* own storage account does not stop a scan: Purview only reads the source
  (data-plane reads are not ARM writes a policy evaluates), so it is not checked and never warned about.
  https://learn.microsoft.com/en-us/azure/governance/policy/concepts/effect-deny (deny evaluates
  create/update requests)
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from checks import fixes
from checks.accounts import arm_name
from checks.catalogue import scan_history
from checks.check import Check, CheckMeta
from checks.classify import error_text
from checks.errors import GatewayError
from checks.gateways.api import Json
from checks.model import Finding, Status
from checks.sections import SCANS_NO_LONGER_RUN
from checks.target import Target
from checks.times import parse_time

META = CheckMeta(
    id="azure-policy",
    title="Azure Policy blocking Purview's managed resources",
    sections=(SCANS_NO_LONGER_RUN,),
    description=(
        "Latest non-compliant deny policy states on the Purview account's managed storage account and "
        "managed Event Hubs namespace: an account-level hazard (warn) until one of this source's runs is "
        "denied by policy (fail); names the assignment and gives the exemption / exception-tag fix."
    ),
)
MANAGED_STORAGE = "Purview's managed storage account"
MANAGED_EVENT_HUB = "Purview's managed Event Hubs namespace"
WHY = (
    "Purview creates and regularly updates it, and a deny policy it does not comply with blocks those updates"
)
POLICY_DENIAL = re.compile(r"RequestDisallowedByPolicy|disallowed\s+by\s+policy", re.IGNORECASE)
# ARM's RequestDisallowedByPolicy message: "Resource 'NAME' was disallowed by policy. Policy identifiers: …"
DENIED_RESOURCE = re.compile(r"resource\s+'([^']+)'\s+was\s+disallowed\s+by\s+policy", re.IGNORECASE)
TAG_RULE = '{"not": {"field": "tags[\'resourceBypass\']", "exists": true}}'
SOURCE_NOTE = (
    "A deny policy on a source's own storage account does not stop its scans (Purview only reads it), so "
    "it is not checked."
)


@dataclass(frozen=True)
class Subject:
    """One of the Purview account's managed resources, whose deny policy states concern every source."""

    resource_id: str
    role: str  # MANAGED_STORAGE | MANAGED_EVENT_HUB
    exemption: str  # base name of the exemption the fix creates

    @property
    def name(self) -> str:
        return arm_name(self.resource_id)


@dataclass(frozen=True)
class Denial:
    """A scan of this source whose newest finished run failed because a policy denied a request."""

    scan: str
    run: Json
    text: str

    @property
    def resources(self) -> list[str]:
        """The resource names the error says were disallowed (none when it does not say)."""
        return [m.lower() for m in DENIED_RESOURCE.findall(self.text)]

    def evidence(self) -> dict[str, Any]:
        return {
            "scan": self.scan,
            "runId": self.run.get("id"),
            "status": self.run.get("status"),
            "endTime": self.run.get("endTime"),
            "error": self.text[:500],
        }


def managed_subjects(account: Json) -> list[Subject]:
    """`managedResources.storageAccount` and `.eventHubNamespace` (unless the managed Event Hub is off)."""
    props = account.get("properties") or {}
    managed = props.get("managedResources") or {}
    out: list[Subject] = []
    storage = managed.get("storageAccount")
    if storage:
        out.append(Subject(str(storage), MANAGED_STORAGE, "purview-managed-storage"))
    hub = managed.get("eventHubNamespace")
    if hub and str(props.get("managedEventHubState") or "").lower() != "disabled":
        out.append(Subject(str(hub), MANAGED_EVENT_HUB, "purview-managed-eventhub"))
    return out


def _no_managed_resources(account: Json, account_name: str) -> Finding:
    props = account.get("properties") or {}
    created = props.get("createdAt") or (account.get("systemData") or {}).get("createdAt")
    when = f", created {str(created)[:10]}," if created else ""
    if props.get("ingestionStorage"):
        detail = (
            f"Purview account {account_name}{when} has ingestion storage (properties.ingestionStorage) "
            "instead of managed resources: accounts created after 15 December 2023 keep no managed storage "
            "account or Event Hubs namespace in your subscription, so no Azure Policy of yours can block "
            "Purview's updates to them."
        )
    else:
        detail = (
            f"Purview account {account_name}{when} lists no managed storage account or Event Hubs namespace "
            "(no properties.managedResources): there is nothing of Purview's in your subscription for a "
            "deny policy to block. Accounts created after 15 December 2023 have none."
        )
    return META.skipped(
        f"No managed storage of Purview account {account_name} in your subscription",
        f"{detail} {SOURCE_NOTE}",
    )


def _assignments(rows: list[Json]) -> dict[str, list[Json]]:
    """Rows grouped by policy assignment (one exemption each)."""
    grouped: dict[str, list[Json]] = {}
    for row in rows:
        key = str(row.get("policyAssignmentId") or row.get("policyAssignmentName") or "").lower()
        grouped.setdefault(key, []).append(row)
    return grouped


def _row_evidence(row: Json) -> dict[str, Any]:
    keys = (
        "policyAssignmentId", "policyAssignmentName", "policyAssignmentScope", "policyDefinitionId",
        "policyDefinitionName", "policyDefinitionAction", "policySetDefinitionId",
        "policyDefinitionReferenceId", "complianceState", "timestamp",
    )  # fmt: skip
    return {k: row.get(k) for k in keys if row.get(k) is not None}


def _exemption_fix(subject: Subject, rows: list[Json], name: str) -> str:
    assignment = rows[0].get("policyAssignmentId") or rows[0].get("policyAssignmentName")
    refs = sorted(
        {str(r["policyDefinitionReferenceId"]) for r in rows if r.get("policyDefinitionReferenceId")}
    )
    by_ref: list[fixes.Arg] = [f"--policy-definition-reference-ids {' '.join(refs)}"] if refs else []
    return fixes.command(
        "az policy exemption create",
        [
            ("--name", name),
            ("--policy-assignment", "$ASSIGNMENT"),
            ("--scope", "$SCOPE"),
            ("--exemption-category", "Waiver"),
            *by_ref,
        ],
        variables={"ASSIGNMENT": str(assignment), "SCOPE": subject.resource_id},
    )


def _since(rows: list[Json]) -> str | None:
    """The earliest evaluation timestamp of the states, ISO 8601 UTC: the state held at least since then."""
    times = [t for t in (parse_time(r.get("timestamp")) for r in rows) if t is not None]
    if not times:
        return None
    return min(times).astimezone(UTC).isoformat().replace("+00:00", "Z")


async def denials(target: Target) -> list[Denial] | None:
    """This source's scans whose newest finished run a policy denied; None when the runs cannot be read."""
    names = [str(scan.get("name", "")) for scan in target.scans]
    try:
        runs = await asyncio.gather(*(target.facts.runs(target.source_name, n) for n in names))
    except GatewayError:
        return None
    out: list[Denial] = []
    for name, scan_runs in zip(names, runs, strict=True):
        last = scan_history.history(list(scan_runs)).last
        if last is None or str(last.get("status") or "").lower() != "failed":
            continue
        text = error_text(last)
        if POLICY_DENIAL.search(text):
            out.append(Denial(name, last, text))
    return out


def _names(denial: Denial, subject: Subject, rows: list[Json]) -> bool:
    """The denial names this resource, or one of the assignments reporting it NonCompliant."""
    text = denial.text.lower()
    assignments = {
        str(r.get(k)).lower()
        for r in rows
        for k in ("policyAssignmentId", "policyAssignmentName")
        if r.get(k)
    }
    return subject.name.lower() in denial.resources or any(a in text for a in assignments)


def _points_at(denial: Denial, subject: Subject, rows: list[Json], *, takes_bare: bool) -> bool:
    """The denial is about this resource or assignment; or it names no resource at all (a bare
    RequestDisallowedByPolicy) and this resource takes bare denials. A denial naming another resource is
    not this resource's doing."""
    return _names(denial, subject, rows) or (takes_bare and not denial.resources)


def _violation(
    subject: Subject, rows: list[Json], exemption: str, found: list[Denial] | None, *, takes_bare: bool
) -> Finding:
    first = rows[0]
    assignment = str(first.get("policyAssignmentName") or first.get("policyAssignmentId") or "?")
    definitions = sorted({str(r.get("policyDefinitionName") or r.get("policyDefinitionId")) for r in rows})
    corroborating = [d for d in found or [] if _points_at(d, subject, rows, takes_bare=takes_bare)]
    evidence: dict[str, Any] = {
        "resourceId": subject.resource_id,
        "role": subject.role,
        "states": [_row_evidence(r) for r in rows],
        "deniedScans": None if found is None else [d.scan for d in corroborating],
        "deniedRuns": [d.evidence() for d in corroborating],
    }
    detail = (
        f"Policy assignment {assignment} ({first.get('policyAssignmentId')}), definition "
        f"{', '.join(definitions)}, reports {subject.role} {subject.resource_id} as NonCompliant with a "
        f"deny effect: {WHY}, and scans of every source of the account can fail. Create an exemption for "
        "this resource (below), or use the Microsoft Purview exception tag: put a tag such as resourceBypass "
        f"on the Purview account and its managed resources and add {TAG_RULE} to the policy rule so "
        "resources carrying it are skipped."
    )
    if found is None:
        status = Status.WARN
        impact = " The scans' runs could not be read to tell whether it has blocked this source's scans."
    elif corroborating:
        status = Status.FAIL
        scans = ", ".join(d.scan for d in corroborating)
        impact = f" The newest run of scan {scans} failed with a policy denial: this is why it fails."
        since = _since(rows)
        if since:
            evidence["causeSince"] = since  # checks/run_evidence.py: when the failing state was seen
    else:
        status = Status.WARN
        impact = (
            " None of this source's newest runs was denied by a policy yet: it is a hazard for every "
            "source of the account, and becomes the cause when Purview next needs to update the resource."
        )
    return META.finding(
        status,
        f"Azure Policy {assignment} denies updates to {subject.role} {subject.name}",
        detail=f"{detail}{impact} {SOURCE_NOTE}",
        fix=[_exemption_fix(subject, rows, exemption)],
        evidence=evidence,
    )


def _no_state(subject: Subject, found: list[Denial] | None, *, takes_bare: bool) -> Finding:
    """No deny state: pass, unless a run was denied by a policy pointing here (states can lag a day).

    A bare denial (naming no resource) counts here only when this resource takes bare denials.
    """
    evidence: dict[str, Any] = {"resourceId": subject.resource_id, "role": subject.role, "states": []}
    pointing = [d for d in found or [] if _points_at(d, subject, [], takes_bare=takes_bare)]
    if pointing:
        scans = ", ".join(d.scan for d in pointing)
        return META.finding(
            Status.WARN,
            f"Scan {scans} was denied by an Azure Policy, which Policy Insights does not show on "
            f"{subject.role} {subject.name}",
            detail=(
                f"The newest run of scan {scans} failed with a policy denial, but Policy Insights reports "
                f"no NonCompliant deny state for {subject.resource_id}: the denied request may have been a "
                "creation (which leaves no state) or the compliance scan has not caught up (it runs about "
                "once a day). The Activity Log's Microsoft.Authorization/policies/deny/action events name "
                f"the assignment. {SOURCE_NOTE}"
            ),
            fix=[
                fixes.wrap(
                    "az monitor activity-log list --offset 7d --query "
                    "\"[?operationName.value=='Microsoft.Authorization/policies/deny/action']\""
                )
            ],
            evidence={**evidence, "deniedRuns": [d.evidence() for d in pointing]},
        )
    return META.finding(
        Status.PASS,
        f"No deny policy blocks {subject.role} {subject.name}",
        detail=(
            f"Policy Insights reports no NonCompliant deny state for {subject.role} {subject.resource_id}. "
            f"{SOURCE_NOTE}"
        ),
        evidence=evidence,
    )


def judge(
    subject: Subject, rows: list[Json], found: list[Denial] | None = None, *, takes_bare: bool = True
) -> list[Finding]:
    """One finding per deny assignment the resource does not comply with; one finding when there is none."""
    grouped = _assignments(rows)
    if not grouped:
        return [_no_state(subject, found, takes_bare=takes_bare)]
    out = []
    for group in grouped.values():
        suffix = str(group[0].get("policyAssignmentName") or "") if len(grouped) > 1 else ""
        name = f"{subject.exemption}-{suffix}"[:64] if suffix else subject.exemption
        out.append(_violation(subject, group, name, found, takes_bare=takes_bare))
    return out


async def _states(target: Target, subject: Subject) -> list[Json] | Finding:
    try:
        return await target.facts.deny_policy_states(subject.resource_id)
    except GatewayError as error:
        title = f"Could not read the policy states of {subject.role} {subject.name}"
        return META.unknown(title, error, evidence={"resourceId": subject.resource_id})


async def _managed(target: Target, found: asyncio.Future[list[Denial] | None]) -> list[Finding]:
    try:
        account = await target.facts.account()
    except GatewayError as error:
        return [META.unknown(f"Could not read Purview account {target.account_name}", error)]
    subjects = managed_subjects(account)
    if not subjects:
        return [_no_managed_resources(account, target.account_name)]
    states = await asyncio.gather(*(_states(target, s) for s in subjects))
    denied = await found
    # A bare policy denial (naming no resource) is put on one resource only: the first (storage before
    # Event Hubs) with a deny state or whose states could not be read (then on none: it is unknown), else
    # the first.
    owner = next((i for i, rows in enumerate(states) if not isinstance(rows, list) or rows), 0)
    out: list[Finding] = []
    for i, (subject, rows) in enumerate(zip(subjects, states, strict=True)):
        if isinstance(rows, Finding):
            out.append(rows)
        else:
            out += judge(subject, rows, denied, takes_bare=i == owner)
    return out


async def run(target: Target) -> list[Finding]:
    # the runs decide only the status: read them beside the account and the policy states, not before
    found = asyncio.ensure_future(denials(target))
    try:
        return await _managed(target, found)
    finally:
        if not found.done():
            found.cancel()


CHECK = Check(meta=META, run=run)
