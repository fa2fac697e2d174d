"""Which integration runtime a scan runs on, and how a managed private endpoint is judged.

`private-network` and `integration-runtime` both judge the managed private endpoints leading to a resource
through `judge_endpoints` here, so the two checks never disagree about the same endpoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from checks import fixes
from checks.gateways.api import Json
from checks.model import Status, worst

# The default Azure IR: `connectedVia` null, or (as the portal shows it) the auto-resolve runtime's name.
# Such a name is not a Purview integration runtime resource, so it must not be looked up as one.
_AZURE_IR = re.compile(r"^(azure\s*)?auto-?resolve(\s*integration\s*runtime)?$", re.IGNORECASE)


def scan_runtime_name(scan: Json) -> str | None:
    """The Purview integration runtime a scan names, or None when it runs on the default Azure IR."""
    via = (scan.get("properties") or {}).get("connectedVia")
    name = via.get("referenceName") if isinstance(via, dict) else None
    if not name or _AZURE_IR.match(str(name).strip()):
        return None
    return str(name)


# --- managed private endpoints -------------------------------------------------------------------------
#
# A private endpoint reaches one sub-resource (`groupId`) of its target: an endpoint to the right account
# for `blob` does not carry `dfs` traffic. Sub-resources per service:
# https://learn.microsoft.com/en-us/azure/private-link/private-endpoint-overview#private-link-resource
# Purview's managed VNet IR reaches sources (and Key Vaults holding credentials) only through managed
# private endpoints, and only an Approved one carries traffic:
# https://learn.microsoft.com/en-us/purview/catalog-managed-vnet


@dataclass(frozen=True)
class Need:
    """A sub-resource the scan's traffic needs an endpoint for: any of `groups` serves (case-insensitive);
    `required=False` marks one Microsoft recommends, whose absence is a hazard (`warn`), not a stop."""

    groups: tuple[str, ...]
    required: bool = True

    @property
    def label(self) -> str:
        return " or ".join(self.groups)

    def served_by(self, group: Any) -> bool:
        return str(group or "").lower() in {g.lower() for g in self.groups}


# ADLS Gen2: the scan reads the `dfs` endpoint; "if you create a private endpoint for the Data Lake Storage
# endpoint, you should also create one for the Blob Storage endpoint: operations that target the Data Lake
# Storage endpoint might be redirected to the Blob endpoint"
# https://learn.microsoft.com/en-us/azure/storage/common/storage-private-endpoints#creating-a-private-endpoint
SOURCE_NEEDS: dict[str, tuple[Need, ...]] = {
    "azurestorage": (Need(("blob",)),),
    "adlsgen2": (Need(("dfs",)), Need(("blob",), required=False)),
    "azuresqldatabase": (Need(("sqlServer",)),),
    "azuresqldatawarehouse": (Need(("sqlServer",)),),
    "azuresqldatabasemanagedinstance": (Need(("managedInstance",)),),
    # dedicated (`Sql`) or serverless (`SqlOnDemand`) pools: which one a scan reads is in its rule set
    "azuresynapseworkspace": (Need(("Sql", "SqlOnDemand")),),
    "azuresynapse": (Need(("Sql", "SqlOnDemand")),),
    "azurecosmosdb": (Need(("Sql",)),),  # Purview scans the NoSQL API
}
VAULT_NEEDS: tuple[Need, ...] = (Need(("vault",)),)

_IN_TRANSIT = frozenset({"creating", "provisioning", "updating", "accepted", "inprogress", "running"})


def source_needs(kind: str | None) -> tuple[Need, ...]:
    """The sub-resources a source kind's scan needs endpoints for; () when the bot has no rule (then any
    endpoint to the resource is judged on its state alone)."""
    return SOURCE_NEEDS.get(str(kind or "").lower(), ())


def _norm(value: Any) -> str:
    return "".join(ch for ch in str(value or "").lower() if ch.isalnum())


def mpe_link(mpe: Json) -> str:
    return str((mpe.get("properties") or {}).get("privateLinkResourceId") or "")


def mpe_group(mpe: Json) -> str:
    return str((mpe.get("properties") or {}).get("groupId") or "")


def mpe_status(mpe: Json) -> str:
    """The connection's approval: Approved, Pending, Rejected, Disconnected ('' when absent)."""
    return str(((mpe.get("properties") or {}).get("connectionState") or {}).get("status") or "")


def mpe_provisioning(mpe: Json) -> str:
    return str((mpe.get("properties") or {}).get("provisioningState") or "")


def leads_to(mpe: Json, resource_id: str) -> bool:
    """The endpoint targets the resource or its parent (a database's server, a pool's workspace)."""
    link = mpe_link(mpe).lower().rstrip("/")
    wanted = resource_id.lower().rstrip("/")
    return bool(link) and (wanted == link or wanted.startswith(link + "/"))


def mpe_evidence(mpe: Json) -> dict[str, Any]:
    return {
        "name": mpe.get("name"),
        "privateLinkResourceId": mpe_link(mpe),
        "groupId": mpe_group(mpe) or None,
        "status": mpe_status(mpe) or None,
        "provisioningState": mpe_provisioning(mpe) or None,
    }


@dataclass(frozen=True)
class EndpointVerdict:
    """One endpoint's own state: whether it carries traffic, and what to do if not."""

    status: Status
    sentence: str
    fix: list[str] = field(default_factory=list)


def _recreate_fix(mpe: Json) -> list[str]:
    return [
        "In the Purview portal (https://web.purview.azure.com): Management > Managed private endpoints: "
        f"delete and re-create {mpe.get('name')}, then approve it on {arm_tail(mpe_link(mpe))}."
    ]


def _approve_fix(mpe: Json) -> list[str]:
    pending = "[?properties.privateLinkServiceConnectionState.status=='Pending'].id"
    return [
        fixes.wrap(
            f'az network private-endpoint-connection list --id {mpe_link(mpe)} --query "{pending}" -o tsv'
        ),
        fixes.wrap(
            "az network private-endpoint-connection approve --id <connection id from above> "
            f'--description "Purview managed private endpoint {mpe.get("name")}"'
        ),
    ]


def arm_tail(resource_id: str) -> str:
    """A resource's name from its ARM id (the id itself when it has no `/`)."""
    return resource_id.rstrip("/").rsplit("/", 1)[-1] or resource_id


def judge_endpoint(mpe: Json) -> EndpointVerdict:
    """An endpoint carries traffic when it is provisioned (`Succeeded`) and its connection `Approved`.

    A failed or deleted provisioning, or a connection not approved, stops the traffic now (`fail`);
    provisioning still under way is in transit (`warn`). An absent provisioningState is not held against
    it (older answers omit it).
    """
    name = str(mpe.get("name") or "?")
    group = f" ({mpe_group(mpe)})" if mpe_group(mpe) else ""
    prov, approval = _norm(mpe_provisioning(mpe)), _norm(mpe_status(mpe))
    if prov in {"failed", "canceled", "cancelled", "deleting", "deleted"}:
        sentence = f"{name}{group} provisioning is {mpe_provisioning(mpe)}"
        return EndpointVerdict(Status.FAIL, sentence, _recreate_fix(mpe))
    if approval in {"rejected", "disconnected"}:
        return EndpointVerdict(Status.FAIL, f"{name}{group} is {mpe_status(mpe)}", _recreate_fix(mpe))
    if approval != "approved":
        return EndpointVerdict(
            Status.FAIL, f"{name}{group} is {mpe_status(mpe) or 'in no approval state'}", _approve_fix(mpe)
        )
    if prov in _IN_TRANSIT:
        sentence = f"{name}{group} is Approved but still being provisioned ({mpe_provisioning(mpe)})"
        return EndpointVerdict(Status.WARN, sentence)
    if prov and prov != "succeeded":
        sentence = f"{name}{group} is Approved but in provisioning state {mpe_provisioning(mpe)}"
        return EndpointVerdict(Status.WARN, sentence)
    return EndpointVerdict(Status.PASS, f"{name}{group} is Approved")


@dataclass(frozen=True)
class TargetJudgement:
    """The managed private endpoints leading to one resource, against the sub-resources the scan needs."""

    resource_id: str
    label: str  # "the source sales-adls", "Key Vault kv-finance"
    endpoints: list[Json]  # those leading to the resource
    findings: list[tuple[Status, str]]  # (verdict, sentence) per endpoint used and per need not served
    fix: list[str]

    @property
    def status(self) -> Status:
        return worst([s for s, _ in self.findings])

    @property
    def has_endpoints(self) -> bool:
        return bool(self.endpoints)

    @property
    def sentences(self) -> list[str]:
        return [sentence for _, sentence in self.findings]

    @property
    def problems(self) -> list[str]:
        return [sentence for status, sentence in self.findings if status is not Status.PASS]

    def evidence(self) -> list[dict[str, Any]]:
        return [{**mpe_evidence(m), "target": self.label} for m in self.endpoints]


def _create_fix(resource_id: str, group: str) -> list[str]:
    return [
        "In the Purview portal (https://web.purview.azure.com): Management > Managed private endpoints > "
        f"New: pick {arm_tail(resource_id)} with target sub-resource {group}, then approve it on the "
        "resource (Networking > Private endpoint connections)."
    ]


def judge_endpoints(
    mpes: list[Json], resource_id: str, label: str, needs: tuple[Need, ...]
) -> TargetJudgement:
    """Judge the endpoints of a managed VNet leading to `resource_id` for the sub-resources in `needs`.

    Every need is served by its best endpoint (a working one if any); an endpoint of the right resource
    but another groupId serves no need. With no endpoint at all the judgement is `fail` (the runtime
    cannot reach the resource); callers that do not own that question look at `has_endpoints` first.
    """
    mine = [m for m in mpes if leads_to(m, resource_id)]
    verdicts = [(m, judge_endpoint(m)) for m in mine]
    found: list[tuple[Status, str]] = []
    fix: list[str] = []
    if not mine:
        group = needs[0].groups[0] if needs else "<sub-resource>"
        found.append((Status.FAIL, f"no managed private endpoint leads to {label}"))
        return TargetJudgement(resource_id, label, [], found, _create_fix(resource_id, group))
    if not needs:  # no sub-resource rule for this kind: the endpoints' own state decides
        for _, v in verdicts:
            found.append((v.status, v.sentence))
            fix += v.fix
    for need in needs:
        serving = [(m, v) for m, v in verdicts if need.served_by(mpe_group(m))]
        if not serving:
            if need.required:
                others = ", ".join(f"{m.get('name')} ({mpe_group(m) or 'no groupId'})" for m in mine)
                sentence = f"no endpoint to {label} targets sub-resource {need.label} (only {others})"
            else:
                beside = ", ".join(n.label for n in needs if n.required) or "the others"
                sentence = (
                    f"no endpoint to {label} targets sub-resource {need.label}, which Microsoft recommends "
                    f"beside {beside}"
                )
            found.append((Status.FAIL if need.required else Status.WARN, sentence))
            fix += _create_fix(resource_id, need.groups[0])
            continue
        _, best = min(serving, key=lambda mv: mv[1].status.severity or 0)  # a working one if any
        status = best.status if need.required or best.status is Status.PASS else Status.WARN
        found.append((status, best.sentence))
        fix += best.fix
    unique = list(dict.fromkeys(found))
    return TargetJudgement(resource_id, label, mine, unique, list(dict.fromkeys(fix)))
