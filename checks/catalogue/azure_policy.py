"""azure-policy: "Is an Azure Policy preventing updates to Storage accounts?" (scans no longer run).

Purview creates and regularly updates its managed storage account; a `deny` policy that storage account
does not comply with blocks those updates and scans fail. The source's own storage account is read too: a
deny there blocks the network changes a fix may need. Decisions come from Policy Insights' latest states.

Policy states are account-wide facts, while a report is about one source: a deny state fails the report
when this source's latest run was denied by a policy, warns when the runs cannot tell (unreadable) or when
the deny is on the source's own account, and otherwise passes with the state named in the detail, so the
healthy sources of an account are not all reported failing for one shared, latent cause.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from checks.accounts import arm_name
from checks.check import Check, CheckMeta
from checks.classify import error_text
from checks.errors import GatewayError
from checks.gateways.api import Json
from checks.model import Finding, Status
from checks.secret_refs import EPOCH
from checks.sections import SCANS_NO_LONGER_RUN
from checks.source_kinds import STORAGE_TYPE, source_kind
from checks.target import Target
from checks.times import parse_time

META = CheckMeta(
    id="azure-policy",
    title="Azure Policy blocking storage updates",
    sections=(SCANS_NO_LONGER_RUN,),
    description=(
        "Latest non-compliant deny policy states on the Purview account's managed storage account and on "
        "the source's storage account; names the assignment and gives the exemption / exception-tag fix."
    ),
)
MANAGED_WHY = "Purview creates and regularly updates this storage account, and a deny there makes scans fail"
SOURCE_WHY = "it blocks changes to the source's storage account, such as a network rule a fix may need"
POLICY_DENIAL = re.compile(r"RequestDisallowedByPolicy|disallowed\s+by\s+policy", re.IGNORECASE)
TAG_RULE = '{"not": {"field": "tags[\'resourceBypass\']", "exists": true}}'


@dataclass(frozen=True)
class Subject:
    """A storage account whose deny policy states matter, and why."""

    resource_id: str
    role: str  # "Purview's managed storage account" | "the source's storage account"
    exemption: str  # base name of the exemption the fix creates
    why: str  # what a deny there breaks
    account_wide: bool = False  # Purview's managed storage: shared by every source of the account

    @property
    def name(self) -> str:
        return arm_name(self.resource_id)


def managed_storage_id(account: Json) -> str | None:
    """`managedResources.storageAccount`, or `ingestionStorage.id` on accounts without managed resources."""
    props = account.get("properties") or {}
    managed = (props.get("managedResources") or {}).get("storageAccount")
    ingestion = (props.get("ingestionStorage") or {}).get("id")
    found = managed or ingestion
    return str(found) if found else None


def source_storage(target: Target) -> Subject | None:
    kind = source_kind(target.source_kind)
    if kind is None or kind.resource_type.lower() != STORAGE_TYPE.lower() or not target.resource_id:
        return None
    return Subject(target.resource_id, "the source's storage account", "purview-source-storage", SOURCE_WHY)


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
    by_ref = f" --policy-definition-reference-ids {' '.join(refs)}" if refs else ""
    return (
        f"az policy exemption create --name {name} --policy-assignment {assignment} "
        f"--scope {subject.resource_id} --exemption-category Waiver{by_ref}"
    )


def _latest(runs: list[Json]) -> Json | None:
    """The newest run by end (or start) time, whatever order the list comes in."""
    return max(runs, key=lambda r: parse_time(r.get("endTime") or r.get("startTime")) or EPOCH, default=None)


def policy_denied(runs: list[Json]) -> bool:
    """The scan's latest run failed because a policy denied a request."""
    run = _latest(runs)
    if run is None or str(run.get("status", "")).lower() != "failed":
        return False
    return POLICY_DENIAL.search(error_text(run)) is not None


async def denied_scans(target: Target) -> list[str] | None:
    """Scans of this source whose latest run a policy denied; None when the runs cannot be read."""
    names = [str(scan.get("name", "")) for scan in target.scans]
    try:
        runs = await asyncio.gather(*(target.facts.runs(target.source_name, n) for n in names))
    except GatewayError:
        return None
    return [n for n, rs in zip(names, runs, strict=True) if policy_denied(rs)]


def _impact(subject: Subject, denied: list[str] | None) -> str:
    """Whether this source's scans show the deny: the state is account-wide, its effect is per run."""
    if not subject.account_wide:
        return ""
    if denied is None:
        return " The scans' runs could not be read to tell whether it blocked them."
    if denied:
        return f" The latest run of scan {', '.join(denied)} was denied by a policy."
    return " None of this source's latest runs was denied by a policy (yet); other sources' scans may be."


def _status(subject: Subject, denied: list[str] | None) -> Status:
    """Fail only on evidence that this source's scans were denied; see the module docstring."""
    if denied:
        return Status.FAIL
    if denied is None or not subject.account_wide:
        return Status.WARN
    return Status.PASS


def _violation(subject: Subject, rows: list[Json], exemption: str, denied: list[str] | None) -> Finding:
    first = rows[0]
    status = _status(subject, denied)
    title = f"Azure Policy {{}} denies updates to {subject.role} {subject.name}"
    if status is Status.PASS:
        title += ", but has not blocked this source's scans"
    assignment = str(first.get("policyAssignmentName") or first.get("policyAssignmentId") or "?")
    definitions = sorted({str(r.get("policyDefinitionName") or r.get("policyDefinitionId")) for r in rows})
    detail = (
        f"Policy assignment {assignment} ({first.get('policyAssignmentId')}), definition "
        f"{', '.join(definitions)}, reports {subject.role} {subject.resource_id} as NonCompliant with a "
        f"deny effect: {subject.why}. Create an exemption for this resource (below), or use the Microsoft "
        "Purview exception tag: put a tag such as resourceBypass on the resource and add "
        f"{TAG_RULE} to the policy rule so resources carrying it are skipped."
    )
    return META.finding(
        status,
        title.format(assignment),
        detail=detail + _impact(subject, denied),
        fix=[_exemption_fix(subject, rows, exemption)],
        evidence={
            "resourceId": subject.resource_id,
            "role": subject.role,
            "states": [_row_evidence(r) for r in rows],
            "deniedScans": denied,
        },
    )


def judge(subject: Subject, rows: list[Json], denied: list[str] | None = None) -> list[Finding]:
    """One finding per deny assignment the resource does not comply with; one pass when there is none."""
    grouped = _assignments(rows)
    if not grouped:
        return [
            META.finding(
                Status.PASS,
                f"No deny policy blocks {subject.role} {subject.name}",
                detail=(
                    f"Policy Insights reports no NonCompliant deny state for {subject.role} "
                    f"{subject.resource_id}."
                ),
                evidence={"resourceId": subject.resource_id, "role": subject.role, "states": []},
            )
        ]
    out = []
    for group in grouped.values():
        suffix = str(group[0].get("policyAssignmentName") or "") if len(grouped) > 1 else ""
        name = f"{subject.exemption}-{suffix}"[:64] if suffix else subject.exemption
        out.append(_violation(subject, group, name, denied))
    return out


async def check_subject(
    target: Target, subject: Subject, denied: asyncio.Future[list[str] | None]
) -> list[Finding]:
    try:
        rows = await target.facts.deny_policy_states(subject.resource_id)
    except GatewayError as error:
        title = f"Could not read the policy states of {subject.role} {subject.name}"
        return [META.unknown(title, error, evidence={"resourceId": subject.resource_id})]
    return judge(subject, rows, await denied)


async def _managed(target: Target, denied: asyncio.Future[list[str] | None]) -> list[Finding]:
    title = "Azure Policy on Purview's managed storage account"
    try:
        account = await target.facts.account()
    except GatewayError as error:
        return [META.unknown(title, error)]
    storage = managed_storage_id(account)
    if storage is None:
        detail = (
            f"Purview account {target.account_name} has no managed storage account "
            "(neither managedResources.storageAccount nor ingestionStorage.id)"
        )
        return [META.skipped(title, detail)]
    role = "Purview's managed storage account"
    subject = Subject(storage, role, "purview-managed-storage", MANAGED_WHY, account_wide=True)
    return await check_subject(target, subject, denied)


async def _source(target: Target, denied: asyncio.Future[list[str] | None]) -> list[Finding]:
    subject = source_storage(target)
    return [] if subject is None else await check_subject(target, subject, denied)


async def run(target: Target) -> list[Finding]:
    # the runs decide only the status: read them beside the policy states, not before
    denied = asyncio.ensure_future(denied_scans(target))
    managed, source = await asyncio.gather(_managed(target, denied), _source(target, denied))
    return managed + source


CHECK = Check(meta=META, run=run)
