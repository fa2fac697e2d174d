"""integration-runtime: "Are you using a self-hosted integration runtime? Check that it's up to date … and
connected" (scans no longer run), plus a managed VNet IR's private endpoints.

One finding set per runtime, however many scans use it (the scans are listed in the evidence). The IR's
`/status` strings are untyped in Purview's spec: known-good and known-bad values are decided, anything else
is reported as not understood rather than guessed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from checks.check import Check, CheckMeta
from checks.errors import GatewayError, NotFoundError
from checks.gateways.api import Json
from checks.model import Finding, Status, worst
from checks.runtimes import scan_runtime_name
from checks.secret_refs import Problem, collect, human_time
from checks.sections import SCANS_NO_LONGER_RUN
from checks.target import Target
from checks.times import parse_time

META = CheckMeta(
    id="integration-runtime",
    title="Integration runtime",
    sections=(SCANS_NO_LONGER_RUN,),
    description=(
        "The scan's self-hosted integration runtime exists, is online (state and nodes), was in contact "
        "within the hour, has not expired, and runs the latest version or auto-updates; a managed VNet "
        "runtime's private endpoints to the source and Key Vaults are approved."
    ),
)
T = TypeVar("T")
HEALTHY_STATES = frozenset({"online", "active", "running", "started"})
BAD_STATES = frozenset(
    {"offline", "limited", "needregistration", "accessdenied", "stopped", "initializefailed"}
)
BAD_VERSION_STATUS = frozenset({"expired", "upgraderequired"})
STALE_CONTACT = timedelta(hours=1)
SHIR_DOWNLOAD = "https://www.microsoft.com/download/details.aspx?id=39717"
DMGCMD = r'& "C:\Program Files\Microsoft Integration Runtime\5.0\Shared\dmgcmd.exe"'
PORTAL_IR = "# In the Purview portal: Data Map > Integration runtimes > {ir}"


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
        f"# Start the Integration Runtime service on {machine}: `Start-Service DIAHostService`",
        f"# Check that {machine} reaches Purview: `{probe}`",
    ]


def _register_fix(ir: str, machine: str) -> list[str]:
    return [
        f"{PORTAL_IR.format(ir=ir)}: copy (or regenerate) an authentication key",
        f'Register {machine} again with it: `{DMGCMD} -Key "<authentication key>"`',
    ]


def _nodes(tp: Json) -> list[Json] | None:
    """The status's nodes, or None when it reports none at all (the spec's example has no typeProperties)."""
    nodes = tp.get("nodes")
    return [n for n in nodes if isinstance(n, dict)] if isinstance(nodes, list) else None


def state_problems(target: Target, ir: str, state: str, machines: list[str]) -> list[Problem]:
    where = ", ".join(machines) or "the SHIR machine"
    norm = _norm(state)
    if norm in HEALTHY_STATES:
        return []
    if norm in {"needregistration", "accessdenied"}:
        return [Problem(Status.FAIL, f"state is {state}", _register_fix(ir, where))]
    if norm in BAD_STATES:
        return [Problem(Status.FAIL, f"state is {state}", _start_fix(target, where))]
    return [Problem(Status.WARN, f"state {state or '(none)'} is not one the bot understands")]


def _online(node: Json) -> bool:
    return _norm(node.get("status")) == "online"


def online_problems(target: Target, ir: str, nodes: list[Json]) -> list[Problem]:
    """At least one node must be Online; other nodes not Online only weaken the runtime."""
    if not nodes:
        return [Problem(Status.FAIL, "no node is registered", _register_fix(ir, "the SHIR machine"))]
    if not any(_online(n) for n in nodes):
        listed = ", ".join(f"{_node_name(n)}: {n.get('status')}" for n in nodes)
        fixes = [line for n in nodes for line in _start_fix(target, _machine(n))]
        return [Problem(Status.FAIL, f"no node is Online ({listed})", fixes)]
    return [
        Problem(Status.WARN, f"node {_node_name(n)} is {n.get('status')}", _start_fix(target, _machine(n)))
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
            found.append(Problem(Status.FAIL, sentence, _register_fix(ir, _machine(n))))
    return found


def _node_evidence(node: Json) -> dict[str, Any]:
    keys = ("nodeName", "machineName", "status", "version", "versionStatus", "lastConnectTime", "expiryTime")
    return {k: node.get(k) for k in keys if node.get(k) is not None}


def _verdict(use: IrUse, title: str, label: str, found: list[Problem], evidence: dict[str, Any]) -> Finding:
    sentences = "; ".join(p.sentence for p in found)
    fixes = list(dict.fromkeys(line for p in found for line in p.fix))
    evidence = {**evidence, "problems": [p.sentence for p in found]}
    status = worst([p.status for p in found])
    return META.finding(
        status, title, detail=f"{label}: {sentences}.", fix=fixes, evidence=evidence, scan=use.scan
    )


def judge_connectivity(target: Target, use: IrUse, status: Json) -> Finding:
    props = status.get("properties") or {}
    nodes = _nodes(props.get("typeProperties") or {})
    state = str(props.get("state") or "")
    found = state_problems(target, use.name, state, [_machine(n) for n in nodes or []])
    if nodes is not None:
        found += online_problems(target, use.name, nodes)
        found += contact_problems(target, nodes) + expiry_problems(target, use.name, nodes)
    evidence = {**use.evidence(), "state": state, "nodes": [_node_evidence(n) for n in nodes or []]}
    label = f"Self-hosted integration runtime {use.name}"
    if found:
        return _verdict(use, f"{label}: {found[0].sentence}", label, found, evidence)
    counted = f" with {sum(map(_online, nodes))} of {len(nodes)} node(s) Online" if nodes is not None else ""
    detail = f"{label} is {state}{counted}."
    return META.finding(Status.PASS, f"{label} is online", detail=detail, evidence=evidence, scan=use.scan)


# --- self-hosted: version -----------------------------------------------------------------------------
def version_problems(use: IrUse, tp: Json) -> list[Problem]:
    nodes = _nodes(tp) or []
    version, latest = tp.get("version"), tp.get("latestVersion")
    where = ", ".join(_machine(n) for n in nodes) or "the SHIR machine"
    install = (
        f"# Download the latest SHIR ({latest or 'newest'}) from {SHIR_DOWNLOAD} and install it on {where}"
    )
    auto = f"{PORTAL_IR.format(ir=use.name)} > Auto update: On"
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


def _targets_of(mpe: Json, targets: dict[str, str]) -> list[str]:
    """The scan's resources (source, vaults) a managed private endpoint leads to."""
    link = _mpe_link(mpe).lower().rstrip("/")
    if not link:
        return []
    return [label for rid, label in targets.items() if rid == link or rid.startswith(link + "/")]


async def _targets(target: Target, use: IrUse) -> dict[str, str]:
    """Resource id (lower case) → label, for the source and every vault its scans on this IR use."""
    out = (
        {target.resource_id.lower().rstrip("/"): f"the source {target.source_name}"}
        if target.resource_id
        else {}
    )
    for outcome in await collect(target.facts, use.scans):
        for secret in outcome.secrets:
            out[secret.vault_id.lower().rstrip("/")] = f"Key Vault {secret.vault_name}"
    return out


def _mpe_status(mpe: Json) -> str:
    return str(((mpe.get("properties") or {}).get("connectionState") or {}).get("status") or "")


def _mpe_link(mpe: Json) -> str:
    return str((mpe.get("properties") or {}).get("privateLinkResourceId") or "")


def _approval_fix(mpe: Json) -> list[str]:
    name, link = mpe.get("name"), _mpe_link(mpe)
    if _norm(_mpe_status(mpe)) in {"rejected", "disconnected"}:
        return [
            "# In the Purview portal: Management > Managed private endpoints: delete and re-create "
            f"{name}, then approve it on {link}"
        ]
    pending = "[?properties.privateLinkServiceConnectionState.status=='Pending'].id"
    return [
        f'az network private-endpoint-connection list --id {link} --query "{pending}" -o tsv',
        "az network private-endpoint-connection approve --id <connection id from above> "
        f'--description "Purview managed private endpoint {name}"',
    ]


def judge_endpoints(use: IrUse, vnet: str, mpes: list[Json], targets: dict[str, str]) -> Finding:
    """Fail on any endpoint to the source or a vault that is not Approved; never judge absent ones."""
    relevant = [(m, labels) for m in mpes if (labels := _targets_of(m, targets))]
    evidence = {
        **use.evidence(),
        "managedVirtualNetwork": vnet,
        "endpoints": [
            {
                "name": m.get("name"),
                "privateLinkResourceId": _mpe_link(m),
                "status": _mpe_status(m),
                "targets": t,
            }
            for m, t in relevant
        ],
    }
    label = f"Managed integration runtime {use.name}"
    pending = [(m, t) for m, t in relevant if _norm(_mpe_status(m)) != "approved"]
    if pending:
        what = "; ".join(
            f"{m.get('name')} to {', '.join(t)} is {_mpe_status(m) or 'in no state'}" for m, t in pending
        )
        detail = f"{label} (managed VNet {vnet}): {what}. Only Approved endpoints carry traffic."
        fixes = [line for m, _ in pending for line in _approval_fix(m)]
        title = f"{label}: managed private endpoint not approved"
        return META.finding(Status.FAIL, title, detail=detail, fix=fixes, evidence=evidence, scan=use.scan)
    if relevant:
        names = ", ".join(str(m.get("name")) for m, _ in relevant)
        detail = f"{label} (managed VNet {vnet}): {names} Approved."
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
    return [judge_endpoints(use, vnet, mpes, targets)]


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
            f"# In the Purview portal: Data Map > Integration runtimes > New ({use.name}), "
            "or edit the scan to "
            "use an existing runtime"
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
