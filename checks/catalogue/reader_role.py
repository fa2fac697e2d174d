"""Guide sections "Registering single Azure data source" and "Scanning multiple Azure data sources".

Who needs control-plane Reader, as Azure really behaves:

- Multi-source (subscription / resource group): Purview needs Reader there to list the resources it scans
  ("Prerequisites for registration" of "Register and scan Azure Multiple Sources", and the guide):
    https://learn.microsoft.com/en-us/purview/register-scan-azure-multiple-sources#prerequisites-for-registration
    https://learn.microsoft.com/en-us/purview/troubleshoot-connections#scanning-multiple-azure-data-sources
  "Reader" is decided on effective actions, via `rbac.evaluate`: read on resource groups and on every
  resource type a multi-source scan enumerates (`source_kinds.MULTI_SOURCE_READ_ACTIONS`). A role with
  `*/read` or `*` does; one narrowed by notActions or limited to some providers does not. Purview's
  identity (or the scan's) lacking it = fail (the scan cannot enumerate); the person asking lacking it =
  warn (they cannot create such scans; existing scans are not stopped).
- Single source: the guide's "at least Reader to register" is about the *person registering* ("Search by
  name or email address of the user who is trying to register data sources"):
    https://learn.microsoft.com/en-us/purview/troubleshoot-connections#registering-single-azure-data-source
  Purview's identity needs only its data role to scan it (a connector page grants e.g. Storage Blob Data
  Reader alone; that role is source-access's concern), so the scan identity's Reader is not evaluated:
    https://learn.microsoft.com/en-us/purview/register-scan-azure-blob-storage-source#using-a-system-or-user-assigned-managed-identity-for-scanning
  The requester (`target.requester_upn`, the Slack user mapped to Entra) lacking `<type>/read` on the
  resource = warn (they cannot register it; it does not stop a scan that exists). No requester known =
  skipped, saying why.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from checks import fixes, rbac, sections
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
        "*/read there. Single sources: the person asking, when known, can read the resource to register "
        "it; Purview's identity needs only its data role there, not Reader."
    ),
)

SINGLE_NOTE = (
    "Purview's identity needs no Reader to scan a single source, only its data role on it (see "
    'source-access): the guide\'s "at least Reader" is for the person registering the source.'
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
    return fixes.command(
        "az role assignment create",
        [
            ("--assignee-object-id", subject.identity.object_id),
            ("--assignee-principal-type", subject.principal_type),
            ("--role", "Reader"),
            ("--scope", "$SCOPE"),
        ],
        variables={"SCOPE": scope},
    )


def _label(subject: Subject) -> str:
    i = subject.identity
    what = {"purview": "Purview's managed identity", "scan": "scan identity", "requester": "requester"}
    return f"{what[subject.role]} {i.display_name} (object id {i.object_id})"


def _missing(subject: Subject, multi: bool) -> tuple[Status, str]:
    """The status of a missing Reader, and what it breaks."""
    if multi and subject.role != "requester":
        return (
            Status.FAIL,
            "Purview cannot list the resources under this scope, so the scan cannot enumerate them",
        )
    if multi:
        return Status.WARN, (
            "they cannot create or edit scans of this scope (the guide asks the person creating a "
            "multi-source scan for Reader too); this does not stop existing scans"
        )
    return Status.WARN, (
        "they cannot register this source (the guide asks the person registering it for at least Reader); "
        "this does not stop existing scans of it"
    )


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
    note = "" if multi else f" {SINGLE_NOTE}"
    held = rbac.held_roles_text(grants[0])
    name = subject.identity.display_name
    if missing:
        status, why = _missing(subject, multi)
        return META.finding(
            status,
            f"{name} lacks Reader on {scope_label(scope)}",
            detail=(
                f"The {_label(subject)} holds {held}; these do not grant {', '.join(missing)} at {scope}, "
                f"so {why}. Assign Reader (or any role granting */read) at this scope or above.{note}"
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
            detail=(
                f"The {_label(subject)} reads {', '.join(conditional)} only via conditional assignments."
                f"{note}"
            ),
            fix=[_fix(subject, scope)],
            evidence=evidence,
            scan=scan,
            section=section,
        )
    via = "; ".join(sorted({f"{v['roleName']} at {v['scope']}" for g in grants for v in g.via}))
    return META.finding(
        Status.PASS,
        f"{name} can read {scope_label(scope)}",
        detail=f"The {_label(subject)} holds the reads needed through {via}.{note}",
        evidence=evidence,
        scan=scan,
        section=section,
    )


async def _multi_subjects(target: Target, section: str) -> tuple[list[Subject], list[Finding]]:
    """Purview's identity, the scans' identities and the requester, resolved concurrently, deduplicated."""

    async def purview() -> Subject | Finding:
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


async def _multi(target: Target, scope: str) -> list[Finding]:
    section = sections.SCAN_MULTIPLE
    subjects, problems = await _multi_subjects(target, section)
    results = await asyncio.gather(
        *(_evaluate(target, s, scope, MULTI_SOURCE_READ_ACTIONS, section, True) for s in subjects)
    )
    return [*problems, *results]


async def _single(target: Target, kind: SourceKind, scope: str) -> list[Finding]:
    """Only the requester: Purview's identity needs no Reader to scan a single source."""
    section = sections.REGISTER_SINGLE
    requester = await _requester(target, section)
    if requester is None:
        return [
            META.skipped(
                f"Reader for {target.source_name}: only the person registering it needs it",
                f"{SINGLE_NOTE} The person asking is not known to the bot as an Entra user, so whether "
                "they could register it was not checked.",
                section=section,
            )
        ]
    if isinstance(requester, Finding):
        return [requester]
    return [await _evaluate(target, requester, scope, (kind.read_action,), section, False)]


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
    return await (_multi(target, scope) if multi else _single(target, kind, scope))


CHECK = Check(meta=META, run=run)
