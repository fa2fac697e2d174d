"""integration-runtime: "Are you using a self-hosted integration runtime? Check that it's up to date … and
connected" (scans no longer run), plus a managed VNet IR's private endpoints.

One finding set per runtime, however many scans use it (the scans are listed in the evidence). The IR's
`/status` strings are untyped in Purview's spec: known-good and known-bad values are decided, anything else
is reported as not understood rather than guessed. A failing runtime's evidence carries `causeSince`, its
last contact (or a node's expiry), so a success older than that does not overrule the fail.

Managed private endpoints are judged by `checks.runtimes.judge_endpoints`, the function private-network
uses for the same endpoints, so the two checks never disagree about one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from checks.check import Check, CheckMeta
from checks.errors import GatewayError, NotFoundError
from checks.gateways.api import Json
from checks.model import Finding, Status, worst
from checks.runtimes import (
    VAULT_NEEDS,
    Need,
    TargetJudgement,
    judge_endpoints,
    scan_runtime_name,
    source_needs,
)
from checks.secret_refs import collect, human_time, iso
from checks.sections import SCANS_NO_LONGER_RUN
from checks.target import Target
from checks.times import parse_time
from checks.words import counted

META = CheckMeta(
    id="integration-runtime",
    title="Integration runtime",
    sections=(SCANS_NO_LONGER_RUN,),
    description=(
        "The scan's self-hosted integration runtime exists, is online (state and nodes; Limited with a node "
        "online and in contact, or a node Upgrading, is a warning), was in contact within the hour, has not "
        "expired, and runs the latest version or auto-updates; a managed VNet runtime's private endpoints "
        "to the source and Key Vaults are provisioned and approved for the sub-resource the scan reads."
    ),
)
T = TypeVar("T")
CAUSE_SINCE = "causeSince"  # checks/run_evidence.py: when the failing state came into being
BAD_VERSION_STATUS = frozenset({"expired", "upgraderequired"})
STALE_CONTACT = timedelta(hours=1)
SHIR_DOWNLOAD = "https://www.microsoft.com/download/details.aspx?id=39717"
DMGCMD = r'& "C:\Program Files\Microsoft Integration Runtime\5.0\Shared\dmgcmd.exe"'
PORTAL_IR = "In the Purview portal (https://web.purview.azure.com): Data Map > Integration runtimes > {ir}"


@dataclass
class IrUse:
    """One integration runtime and the scans that run on it."""

    name: str
    scans: list[Json] = field(default_factory=list)

    @property
    def scan_names(self) -> list[str]:
        return [str(s.get("name", "")) for s in self.scans]

    @property
    def scan(self) -> str | None:
        names = self.scan_names
        return names[0] if len(names) == 1 else None

    def evidence(self) -> dict[str, Any]:
        return {"integrationRuntime": self.name, "scans": self.scan_names}


@dataclass(frozen=True)
class Problem:
    """One reason a finding is not a pass, its fix lines, and since when it holds (when known)."""

    status: Status
    sentence: str
    fix: list[str] = field(default_factory=list)
    since: datetime | None = None


def _norm(value: Any) -> str:
    return "".join(ch for ch in str(value or "").lower() if ch.isalnum())


# --- self-hosted: connectivity ------------------------------------------------------------------------
def _node_name(node: Json) -> str:
    return str(node.get("nodeName") or node.get("machineName") or "?")


def _machine(node: Json) -> str:
    return str(node.get("machineName") or node.get("nodeName") or "the SHIR machine")


def _start_fix(target: Target, machine: str) -> list[str]:
    probe = f"Test-NetConnection {target.account_name}.purview.azure.com -Port 443"
    return [
        f"On {machine}, in PowerShell as an administrator: start the Integration Runtime service, then "
        "check that the machine reaches Purview.",
        "Start-Service DIAHostService",
        probe,
    ]


def _register_fix(ir: str, machine: str) -> list[str]:
    return [
        f"{PORTAL_IR.format(ir=ir)}: copy (or regenerate) an authentication key.",
        f"Register {machine} again with it, in PowerShell as an administrator:",
        f'{DMGCMD} -Key "<authentication key>"',
    ]


def _nodes(tp: Json) -> list[Json] | None:
    """The status's nodes, or None when it reports none at all (the spec's example has no typeProperties)."""
    nodes = tp.get("nodes")
    return [n for n in nodes if isinstance(n, dict)] if isinstance(nodes, list) else None


# Runtime `state` and node `status` per the Data Factory monitoring page, which Purview's SHIR shares:
# "Online: all nodes are online. Offline: no node is online. Limited: not all nodes in this self-hosted
# integration runtime are in a healthy state; a warning that some nodes might be down"; a node
# "Upgrading" is being auto-updated; NeedRegistration / AccessDenied need the node registered again.
# https://learn.microsoft.com/en-us/azure/data-factory/monitor-integration-runtime#self-hosted-integration-runtime
# Purview's own `state` is an untyped string (its spec's example says `Active`):
# https://learn.microsoft.com/en-us/rest/api/purview/scanningdataplane/integration-runtimes/get-status
HEALTHY_STATES = frozenset({"online", "active", "running", "started"})
LIMITED_STATE = "limited"
TRANSIT = frozenset({"upgrading", "initializing", "starting"})
REGISTER_STATES = frozenset({"needregistration", "accessdenied", "expired"})
DOWN_STATES = frozenset({"offline", "stopped", "stopping", "initializefailed"})


def _online(node: Json) -> bool:
    return _norm(node.get("status")) == "online"


def _in_transit(node: Json) -> bool:
    return _norm(node.get("status")) in TRANSIT


def _in_contact(target: Target, node: Json) -> bool:
    """Online and heard from within the hour (a node that reports no lastConnectTime is given the benefit)."""
    contact = parse_time(node.get("lastConnectTime"))
    return _online(node) and (contact is None or target.now - contact <= STALE_CONTACT)


def last_contact(nodes: list[Json] | None) -> datetime | None:
    """When any node last connected: the moment the runtime was last known in contact."""
    times = [t for n in nodes or [] if (t := parse_time(n.get("lastConnectTime"))) is not None]
    return max(times, default=None)


def state_problems(target: Target, ir: str, state: str, nodes: list[Json] | None) -> list[Problem]:
    where = ", ".join(_machine(n) for n in nodes or []) or "the SHIR machine"
    since = last_contact(nodes)
    norm = _norm(state)
    if norm in HEALTHY_STATES:
        return []
    if norm == LIMITED_STATE:
        if nodes is None:
            return [Problem(Status.WARN, f"state is {state}: some nodes are down (the status lists none)")]
        alive = [n for n in nodes if _in_contact(target, n)]
        if alive:
            up = ", ".join(_node_name(n) for n in alive)
            sentence = f"state is {state}: some nodes are down, {up} is Online and in contact"
            return [Problem(Status.WARN, sentence)]
        sentence = f"state is {state} and no node is Online and in contact"
        return [Problem(Status.FAIL, sentence, _start_fix(target, where), since)]
    if norm in TRANSIT:
        return [Problem(Status.WARN, f"state is {state}: in transit, scans wait until it is Online")]
    if norm in REGISTER_STATES:
        return [Problem(Status.FAIL, f"state is {state}", _register_fix(ir, where), since)]
    if norm in DOWN_STATES:
        return [Problem(Status.FAIL, f"state is {state}", _start_fix(target, where), since)]
    return [Problem(Status.WARN, f"state {state or '(none)'} is not one the bot understands")]


def online_problems(target: Target, ir: str, nodes: list[Json]) -> list[Problem]:
    """At least one node must be Online; one that is Upgrading is in transit; other nodes not Online only
    weaken the runtime."""
    if not nodes:
        return [Problem(Status.FAIL, "no node is registered", _register_fix(ir, "the SHIR machine"))]
    if not any(_online(n) for n in nodes):
        listed = ", ".join(f"{_node_name(n)}: {n.get('status')}" for n in nodes)
        moving = [n for n in nodes if _in_transit(n)]
        if moving:
            names = ", ".join(_node_name(n) for n in moving)
            sentence = f"no node is Online yet ({listed}): {names} in transit, scans wait until it is back"
            return [Problem(Status.WARN, sentence)]
        fixes = [line for n in nodes for line in _start_fix(target, _machine(n))]
        return [Problem(Status.FAIL, f"no node is Online ({listed})", fixes, last_contact(nodes))]
    return [
        Problem(Status.WARN, f"node {_node_name(n)} is {n.get('status')} (in transit)")
        if _in_transit(n)
        else Problem(
            Status.WARN, f"node {_node_name(n)} is {n.get('status')}", _start_fix(target, _machine(n))
        )
        for n in nodes
        if not _online(n)
    ]


def contact_problems(target: Target, nodes: list[Json]) -> list[Problem]:
    """Online nodes that have not been in touch within the hour (offline ones already fail)."""
    found = []
    for n in nodes:
        contact = parse_time(n.get("lastConnectTime"))
        if _online(n) and contact is not None and target.now - contact > STALE_CONTACT:
            sentence = f"node {_node_name(n)} last contacted Purview on {human_time(contact)}"
            found.append(Problem(Status.WARN, sentence, _start_fix(target, _machine(n))))
    return found


def expiry_problems(target: Target, ir: str, nodes: list[Json]) -> list[Problem]:
    found = []
    for n in nodes:
        expiry = parse_time(n.get("expiryTime"))
        if expiry is not None and expiry <= target.now:
            sentence = f"node {_node_name(n)} expired on {human_time(expiry)}"
            found.append(Problem(Status.FAIL, sentence, _register_fix(ir, _machine(n)), expiry))
    return found


def _node_evidence(node: Json) -> dict[str, Any]:
    keys = ("nodeName", "machineName", "status", "version", "versionStatus", "lastConnectTime", "expiryTime")
    return {k: node.get(k) for k in keys if node.get(k) is not None}


def _verdict(use: IrUse, title: str, label: str, found: list[Problem], evidence: dict[str, Any]) -> Finding:
    """One finding for the problems found; a fail carries `causeSince`, the latest moment a failing cause
    is known to have begun (a runtime's last contact, a node's expiry), when one is."""
    sentences = "; ".join(p.sentence for p in found)
    fixes = list(dict.fromkeys(line for p in found for line in p.fix))
    evidence = {**evidence, "problems": [p.sentence for p in found]}
    status = worst([p.status for p in found])
    since = [p.since for p in found if p.status is Status.FAIL and p.since is not None]
    if status is Status.FAIL and since:
        evidence[CAUSE_SINCE] = iso(max(since))
    return META.finding(
        status, title, detail=f"{label}: {sentences}.", fix=fixes, evidence=evidence, scan=use.scan
    )


def judge_connectivity(target: Target, use: IrUse, status: Json) -> Finding:
    props = status.get("properties") or {}
    nodes = _nodes(props.get("typeProperties") or {})
    state = str(props.get("state") or "")
    found = state_problems(target, use.name, state, nodes)
    if nodes is not None:
        found += online_problems(target, use.name, nodes)
        found += contact_problems(target, nodes) + expiry_problems(target, use.name, nodes)
    evidence = {**use.evidence(), "state": state, "nodes": [_node_evidence(n) for n in nodes or []]}
    label = f"Self-hosted integration runtime {use.name}"
    if found:
        first = next(p for p in found if p.status is worst([q.status for q in found]))
        return _verdict(use, f"{label}: {first.sentence}", label, found, evidence)
    online = f" with {sum(map(_online, nodes))} of {counted(len(nodes), 'node')} Online" if nodes else ""
    detail = f"{label} is {state}{online}."
    return META.finding(Status.PASS, f"{label} is online", detail=detail, evidence=evidence, scan=use.scan)


# --- self-hosted: version -----------------------------------------------------------------------------
def version_problems(use: IrUse, tp: Json) -> list[Problem]:
    nodes = _nodes(tp) or []
    version, latest = tp.get("version"), tp.get("latestVersion")
    where = ", ".join(_machine(n) for n in nodes) or "the SHIR machine"
    install = (
        f"Download the latest SHIR ({latest or 'newest'}) from {SHIR_DOWNLOAD} and install it on {where}."
    )
    auto = f"{PORTAL_IR.format(ir=use.name)} > Auto update: On."
    statuses = [tp.get("versionStatus"), *(n.get("versionStatus") for n in nodes)]
    bad = sorted({str(s) for s in statuses if _norm(s) in BAD_VERSION_STATUS})
    found = []
    if bad:
        sentence = f"version {version} is no longer supported (versionStatus {', '.join(bad)})"
        found.append(Problem(Status.FAIL, sentence, [install]))
    elif any(_norm(s) == "expiring" for s in statuses):
        found.append(Problem(Status.WARN, f"version {version} is about to expire", [install, auto]))
    if version and latest and str(version) != str(latest) and _norm(tp.get("autoUpdate")) != "on":
        auto_update = tp.get("autoUpdate") or "not on"
        sentence = f"runs version {version}, the latest is {latest}, and auto-update is {auto_update}"
        found.append(Problem(Status.WARN, sentence, [install, auto]))
    return found


def judge_version(use: IrUse, status: Json) -> Finding | None:
    """None when the status reports no version (nothing to judge)."""
    tp = (status.get("properties") or {}).get("typeProperties") or {}
    version, latest = tp.get("version"), tp.get("latestVersion")
    if not version:
        return None
    keys = ("version", "latestVersion", "pushedVersion", "autoUpdate", "autoUpdateETA", "versionStatus")
    evidence = {**use.evidence(), **{k: tp[k] for k in keys if tp.get(k) is not None}}
    label = f"Self-hosted integration runtime {use.name}"
    found = version_problems(use, tp)
    if found:
        return _verdict(use, f"{label} is out of date", label, found, evidence)
    if not latest or str(version) == str(latest):
        detail = f"{label} runs version {version}" + (", the latest." if latest else ".")
    else:
        eta = f" (expected {tp['autoUpdateETA']})" if tp.get("autoUpdateETA") else ""
        detail = f"{label} runs version {version}; auto-update is on and will install {latest}{eta}."
    return META.finding(
        Status.PASS, f"{label} is up to date", detail=detail, evidence=evidence, scan=use.scan
    )


def self_hosted(target: Target, use: IrUse, status: Json | GatewayError) -> list[Finding]:
    if isinstance(status, GatewayError):
        title = f"Could not read the status of self-hosted integration runtime {use.name}"
        return [META.unknown(title, status, scan=use.scan, evidence=use.evidence())]
    version = judge_version(use, status)
    connectivity = judge_connectivity(target, use, status)
    return [connectivity] if version is None else [connectivity, version]


# --- managed VNet IR ----------------------------------------------------------------------------------
def vnet_name(ir: Json) -> str | None:
    props = ir.get("properties") or {}
    ref = props.get("managedVirtualNetworkReference") or (props.get("typeProperties") or {}).get(
        "managedVirtualNetworkReference"
    )
    name = ref.get("referenceName") if isinstance(ref, dict) else None
    return str(name) if name else None


async def _targets(target: Target, use: IrUse) -> dict[str, tuple[str, tuple[Need, ...]]]:
    """Resource id (lower case) → (label, sub-resources needed), for the source and every vault its scans
    on this runtime read a credential from."""
    out: dict[str, tuple[str, tuple[Need, ...]]] = {}
    if target.resource_id:
        label = f"the source {target.source_name}"
        out[target.resource_id.lower().rstrip("/")] = (label, source_needs(target.source_kind))
    for outcome in await collect(target.facts, use.scans):
        for secret in outcome.secrets:
            out[secret.vault_id.lower().rstrip("/")] = (f"Key Vault {secret.vault_name}", VAULT_NEEDS)
    return out


def judge_managed_endpoints(use: IrUse, vnet: str, judged: list[TargetJudgement]) -> Finding:
    """The endpoints leading to the source and the scans' vaults, each judged by `runtimes.judge_endpoints`
    (as `private-network` judges the source's). A resource with no endpoint at all is not judged here:
    whether it needs one is the private-network check's call."""
    relevant = [j for j in judged if j.has_endpoints]
    evidence = {
        **use.evidence(),
        "managedVirtualNetwork": vnet,
        "endpoints": [e for j in relevant for e in j.evidence()],
    }
    label = f"Managed integration runtime {use.name}"
    status = worst([j.status for j in relevant])
    if status is not Status.PASS:
        bad = [j for j in relevant if j.status is not Status.PASS]
        what = "; ".join(f"{j.label}: {', '.join(j.problems)}" for j in bad)
        detail = (
            f"{label} (managed VNet {vnet}): {what}. Only a provisioned, Approved endpoint to the "
            "sub-resource the scan reads carries its traffic."
        )
        fixes = list(dict.fromkeys(line for j in bad for line in j.fix))
        title = f"{label}: {bad[0].problems[0]}"
        return META.finding(status, title, detail=detail, fix=fixes, evidence=evidence, scan=use.scan)
    if relevant:
        used = "; ".join(f"{j.label}: {', '.join(j.sentences)}" for j in relevant)
        detail = f"{label} (managed VNet {vnet}): {used}."
        title = f"{label}: managed private endpoints approved"
        return META.finding(Status.PASS, title, detail=detail, evidence=evidence, scan=use.scan)
    detail = (
        f"No managed private endpoint of {vnet} leads to the source or the scan's Key Vaults; whether one "
        "is needed is the private-network check's call."
    )
    title = f"{label} exists (managed VNet {vnet})"
    return META.finding(Status.PASS, title, detail=detail, evidence=evidence, scan=use.scan)


async def managed(target: Target, use: IrUse, ir: Json) -> list[Finding]:
    vnet = vnet_name(ir)
    label = f"Managed integration runtime {use.name}"
    if vnet is None:
        return [
            META.finding(
                Status.PASS,
                f"{label} exists",
                detail=f"{label} names no managed virtual network.",
                evidence=use.evidence(),
                scan=use.scan,
            )
        ]
    try:
        mpes, targets = await asyncio.gather(
            target.facts.managed_private_endpoints(vnet), _targets(target, use)
        )
    except GatewayError as error:
        title = f"Could not read the managed private endpoints of {vnet}"
        return [META.unknown(title, error, scan=use.scan, evidence=use.evidence())]
    judged = [judge_endpoints(mpes, rid, name, needs) for rid, (name, needs) in targets.items()]
    return [judge_managed_endpoints(use, vnet, judged)]


# --- the check ----------------------------------------------------------------------------------------
async def _quietly(call: Awaitable[T]) -> T | GatewayError:
    """The call's result, or its GatewayError as a value (for lookups whose failure is itself a finding)."""
    try:
        return await call
    except GatewayError as error:
        return error


async def runtime_findings(target: Target, use: IrUse) -> list[Finding]:
    ir, status = await asyncio.gather(
        _quietly(target.facts.integration_runtime(use.name)),
        _quietly(target.facts.integration_runtime_status(use.name)),
    )
    if isinstance(ir, NotFoundError):
        return [missing(target, use)]
    if isinstance(ir, GatewayError):
        title = f"Could not read integration runtime {use.name}"
        return [META.unknown(title, ir, scan=use.scan, evidence=use.evidence())]
    kind = _norm(ir.get("kind"))
    if kind == "selfhosted":
        return self_hosted(target, use, status)
    if kind == "managed":
        return await managed(target, use, ir)
    detail = f"integration runtime {use.name} is of kind {ir.get('kind')}, which the bot has no check for"
    return [META.skipped(f"Integration runtime {use.name}", detail, scan=use.scan)]


def missing(target: Target, use: IrUse) -> Finding:
    scans = ", ".join(use.scan_names)
    return META.finding(
        Status.FAIL,
        f"Scan {scans} runs on integration runtime {use.name}, which does not exist",
        detail=(
            f"Scan {scans} names integration runtime {use.name} (connectedVia), which Purview account "
            f"{target.account_name} does not have."
        ),
        fix=[
            "In the Purview portal (https://web.purview.azure.com): Data Map > Integration runtimes > New "
            f"({use.name}), or edit the scan to use an existing runtime."
        ],
        evidence=use.evidence(),
        scan=use.scan,
    )


def azure_ir(scan: Json) -> Finding:
    name = str(scan.get("name", ""))
    return META.finding(
        Status.PASS,
        f"Scan {name} runs on the Azure integration runtime",
        detail="runs on the Azure integration runtime: no self-hosted runtime to keep online or up to date.",
        evidence={"integrationRuntime": None},
        scan=name,
    )


def group_by_runtime(scans: list[Json]) -> tuple[list[Json], list[IrUse]]:
    """Scans on the Azure IR, and one entry per named runtime (case-insensitive)."""
    azure: list[Json] = []
    uses: dict[str, IrUse] = {}
    for scan in scans:
        name = scan_runtime_name(scan)
        if name is None:
            azure.append(scan)
        else:
            uses.setdefault(name.lower(), IrUse(name)).scans.append(scan)
    return azure, list(uses.values())


async def run(target: Target) -> list[Finding]:
    azure, uses = group_by_runtime(target.scans)
    per_runtime = await asyncio.gather(*(runtime_findings(target, u) for u in uses))
    return [azure_ir(s) for s in azure] + [f for fs in per_runtime for f in fs]


CHECK = Check(meta=META, run=run)
