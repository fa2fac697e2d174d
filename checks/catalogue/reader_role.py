"""Guide sections "Registering single Azure data source" and "Scanning multiple Azure data sources".

"At least Reader" is decided on effective control-plane actions, not on the role's name:
- multi-source (subscription / resource group): an identity counts as Reader when its roles grant, at that
  scope, read on resource groups and on every resource type a multi-source scan enumerates
  (`source_kinds.MULTI_SOURCE_READ_ACTIONS`). A role with `*/read` or `*` does; one narrowed by
  notActions or limited to some providers does not. Purview's identity lacking it = fail (the scan
  cannot enumerate); the person asking lacking it = warn (they cannot create such scans).
- single source: `<resource type>/read` on the resource. Scanning itself needs the data-plane role
  (source-access), so lacking Reader there is a warn: the guide asks for it to register and browse.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from checks import rbac, sections
from checks.accounts import arm_name
from checks.check import Check, CheckMeta
from checks.errors import GatewayError
from checks.identity import Identity, purview_identity, scan_identity
from checks.model import Finding, Status
from checks.source_kinds import MULTI_SOURCE_READ_ACTIONS, Family, SourceKind, id_part, source_kind
from checks.target import Target

META = CheckMeta(
    id="reader-role",
    title="Reader on the source or its scope",
    sections=(sections.REGISTER_SINGLE, sections.SCAN_MULTIPLE),
    description=(
        "Subscription / resource-group sources: Purview's identity (and the scan's) has an effective "
        "*/read there. Single sources: the scan identity, and the person asking when known, can read the "
        "resource."
    ),
)


@dataclass(frozen=True)
class Subject:
    """One identity whose read access is evaluated, and why it matters."""

    identity: Identity
    role: str  # "purview" | "scan" | "requester"
    scans: tuple[str, ...] = ()
    principal_type: str = "ServicePrincipal"


def scope_of(target: Target) -> str | None:
    """The registered resource, or the subscription / resource group a multi-source registration covers."""
    if target.resource_id:
        return target.resource_id
    sub, rg = target.source_props.get("subscriptionId"), target.source_props.get("resourceGroup")
    if target.source_kind.lower() == "azuresubscription" and sub:
        return f"/subscriptions/{sub}"
    if target.source_kind.lower() == "azureresourcegroup" and sub and rg:
        return f"/subscriptions/{sub}/resourceGroups/{rg}"
    return None


async def _scan_subjects(target: Target, section: str) -> tuple[list[Subject], list[Finding]]:
    """The distinct identities the scans connect as (scans with a secret credential have none)."""
    names = [str(s.get("name", "")) for s in target.scans]
    results = await asyncio.gather(
        *(scan_identity(target.facts, s) for s in target.scans), return_exceptions=True
    )
    by_oid: dict[str, tuple[Identity, list[str]]] = {}
    problems: list[Finding] = []
    for name, result in zip(names, results, strict=True):
        if isinstance(result, GatewayError):
            title = f"Could not resolve the identity of scan {name}"
            problems.append(META.unknown(title, result, scan=name, section=section))
        elif isinstance(result, BaseException):
            raise result
        elif result is not None:
            by_oid.setdefault(result.object_id.lower(), (result, []))[1].append(name)
    subjects = [Subject(i, "scan", tuple(scans)) for i, scans in by_oid.values()]
    return subjects, problems


async def _requester(target: Target, section: str) -> Subject | Finding | None:
    upn = target.requester_upn
    if not upn:
        return None
    title = f"Could not check whether {upn} can read {target.source_name}"
    try:
        user = await target.facts.user_by_upn(upn)
    except GatewayError as err:
        return META.unknown(title, err, section=section)
    if not user or not user.get("id"):
        return META.finding(
            Status.UNKNOWN,
            title,
            section=section,
            detail=f"Microsoft Graph has no user with the UPN {upn}.",
            evidence={"requesterUpn": upn},
        )
    identity = Identity(
        object_id=str(user["id"]), display_name=str(user.get("displayName") or upn), kind="user"
    )
    return Subject(identity, "requester", principal_type="User")


def scope_label(scope: str) -> str:
    """`stsales`, `resource group rg-data` or `subscription 1111…`: short enough for a title."""
    if "/providers/" in scope.lower():
        return arm_name(scope)
    rg = id_part(scope, "resourceGroups")
    return f"resource group {rg}" if rg else f"subscription {id_part(scope, 'subscriptions')}"


def _fix(subject: Subject, scope: str) -> str:
    return (
        f"az role assignment create --assignee-object-id {subject.identity.object_id} "
        f"--assignee-principal-type {subject.principal_type} --role Reader --scope {scope}"
    )


def _fail_status(subject: Subject, multi: bool) -> Status:
    return Status.FAIL if multi and subject.role != "requester" else Status.WARN


def _label(subject: Subject) -> str:
    i = subject.identity
    what = {"purview": "Purview's managed identity", "scan": "scan identity", "requester": "requester"}
    return f"{what[subject.role]} {i.display_name} (object id {i.object_id})"


async def _evaluate(
    target: Target, subject: Subject, scope: str, actions: tuple[str, ...], section: str, multi: bool
) -> Finding:
    scan = subject.scans[0] if len(subject.scans) == 1 else None
    try:
        grants = await asyncio.gather(
            *(rbac.evaluate(target.facts, scope, subject.identity.object_id, a, data=False) for a in actions)
        )
    except GatewayError as err:
        title = f"Could not read the role assignments of {subject.identity.display_name}"
        return META.unknown(title, err, scan=scan, section=section)
    missing = [a for a, g in zip(actions, grants, strict=True) if not g.granted]
    conditional = [a for a, g in zip(actions, grants, strict=True) if g.granted and g.conditional]
    evidence: dict[str, Any] = {
        "identity": {**subject.identity.evidence(), "role": subject.role},
        "scans": list(subject.scans),
        "scope": scope,
        "actions": {a: g.evidence() for a, g in zip(actions, grants, strict=True)},
        "missing": missing,
        "conditional": conditional,
    }
    held = rbac.held_roles_text(grants[0])
    name = subject.identity.display_name
    if missing:
        why = (
            "Purview cannot enumerate the sources in this scope"
            if multi and subject.role != "requester"
            else "the guide asks for at least Reader to register and scan this source"
        )
        return META.finding(
            _fail_status(subject, multi),
            f"{name} lacks Reader on {scope_label(scope)}",
            detail=(
                f"The {_label(subject)} holds {held}; these do not grant {', '.join(missing)} at {scope}, "
                f"so {why}. Assign Reader (or any role granting */read) at this scope or above."
            ),
            fix=[_fix(subject, scope)],
            evidence=evidence,
            scan=scan,
            section=section,
        )
    if conditional:
        return META.finding(
            Status.WARN,
            f"{name} can read {scope_label(scope)} only under an ABAC condition",
            detail=f"The {_label(subject)} reads {', '.join(conditional)} only via conditional assignments.",
            fix=[_fix(subject, scope)],
            evidence=evidence,
            scan=scan,
            section=section,
        )
    via = "; ".join(sorted({f"{v['roleName']} at {v['scope']}" for g in grants for v in g.via}))
    return META.finding(
        Status.PASS,
        f"{name} can read {scope_label(scope)}",
        detail=f"The {_label(subject)} holds the reads needed through {via}.",
        evidence=evidence,
        scan=scan,
        section=section,
    )


async def _subjects(target: Target, kind: SourceKind, section: str) -> tuple[list[Subject], list[Finding]]:
    """Purview's identity (multi-source), the scans' identities, and the requester, resolved concurrently."""
    multi = kind.family is Family.MULTI

    async def purview() -> Subject | Finding | None:
        if not multi:
            return None
        try:
            return Subject(await purview_identity(target.facts), "purview")
        except GatewayError as err:
            return META.unknown("Could not read Purview's managed identity", err, section=section)

    own, (scan_subjects, problems), requester = await asyncio.gather(
        purview(), _scan_subjects(target, section), _requester(target, section)
    )
    subjects: list[Subject] = []
    for extra in (own, *scan_subjects, requester):
        if isinstance(extra, Finding):
            problems.append(extra)
        elif isinstance(extra, Subject):
            known = {s.identity.object_id.lower() for s in subjects}
            if extra.identity.object_id.lower() not in known:
                subjects.append(extra)
    return subjects, problems


async def run(target: Target) -> list[Finding]:
    kind = source_kind(target.source_kind)
    multi = kind is not None and kind.family is Family.MULTI
    section = sections.SCAN_MULTIPLE if multi else sections.REGISTER_SINGLE
    scope = scope_of(target)
    if kind is None or scope is None:
        reason = (
            f"source kind {target.source_kind} is not an Azure resource the bot knows"
            if kind is None
            else ("the data source has no resourceId")
        )
        return [META.skipped(f"Reader role not checked for {target.source_name}", reason, section=section)]
    actions = MULTI_SOURCE_READ_ACTIONS if multi else (kind.read_action,)
    subjects, problems = await _subjects(target, kind, section)
    if not subjects and not problems:
        return [
            META.skipped(
                f"No Entra identity to check on {target.source_name}",
                "Every scan uses a secret credential (account key, SQL login) and no requester is known.",
                section=section,
            )
        ]
    results = await asyncio.gather(*(_evaluate(target, s, scope, actions, section, multi) for s in subjects))
    return [*problems, *results]


CHECK = Check(meta=META, run=run)
